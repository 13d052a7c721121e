import type { Emulator } from '../emulator';
import { PortalHit } from '../events/event-dispatcher';
import type { Portal, RestRequestRecord } from '../portals/portal';
import { faultsConcern } from '../portals/portal-faults';
import { authenticate } from './authentication';
import { batchCommandMethods } from './batch';
import type { RestCallRunner } from './call-runner';
import { RestError, restErrors } from './rest-error';

/** What to send back: a status and envelope, or nothing at all (a lost answer). */
export type RestAnswer =
  | { readonly status: number; readonly body: unknown }
  | { readonly status: 502 | 504; readonly html: string }
  | 'withheld';

/**
 * One HTTP request to a portal's REST endpoint, checked in the portal's order: portal faults,
 * the leaky bucket (a batch counts once), authentication, then the call itself.
 */
export class PortalRestApi {
  constructor(
    private readonly emulator: Emulator,
    private readonly runner: RestCallRunner,
  ) {}

  async answer(
    portal: Portal,
    method: string,
    params: Readonly<Record<string, unknown>>,
    authorizationHeader: string | undefined,
  ): Promise<RestAnswer> {
    portal.counters.httpRequests++;
    const methods = method === 'batch' ? [method, ...batchCommandMethods(params)] : [method];
    const record: RestRequestRecord = {
      method,
      commands: methods.length - 1,
      authConnector: typeof params.auth_connector === 'string' ? params.auth_connector : '',
      receivedAt: performance.timeOrigin + performance.now(),
      outcome: 'ok',
    };
    portal.recordRequest(record);
    const drains = methods.includes('event.offline.get');
    if (drains) portal.counters.offlineGetStarted();
    try {
      const answer = await this.process(portal, method, methods, params, authorizationHeader);
      if (answer !== 'withheld') {
        record.outcome =
          'html' in answer ? `http_${answer.status}` : outcomeOf(errorCodeOf(answer.body));
      }
      return answer;
    } catch (error) {
      if (error instanceof RestError) {
        record.outcome = outcomeOf(error.code);
        return { status: error.httpStatus, body: error.toEnvelope() };
      }
      throw error;
    } finally {
      if (drains) portal.counters.offlineGetFinished();
    }
  }

  private async process(
    portal: Portal,
    method: string,
    methods: readonly string[],
    params: Readonly<Record<string, unknown>>,
    authorizationHeader: string | undefined,
  ): Promise<RestAnswer> {
    const faults = portal.faults;
    const faulty = methods.some((name, index) => faultsConcern(faults, name, index === 0));
    if (faults.portalDeleted === true) throw restErrors.portalDeleted();
    if (faulty && faults.overload === true) throw restErrors.overload();
    if (
      faulty &&
      faults.gatewayTimeoutRate !== undefined &&
      Math.random() < faults.gatewayTimeoutRate
    ) {
      const status = Math.random() < 0.5 ? 502 : 504;
      const title = status === 502 ? '502 Bad Gateway' : '504 Gateway Time-out';
      return {
        status,
        html: `<html><head><title>${title}</title></head><body><center><h1>${title}</h1></center><hr><center>nginx</center></body></html>`,
      };
    }
    if (!portal.rateLimiter.tryAdd(portal.rateLimit)) {
      portal.counters.rateLimitRefusals++;
      throw restErrors.queryLimitExceeded();
    }
    const caller = authenticate(this.emulator, portal, params, authorizationHeader);
    const withheld =
      faulty && faults.timeoutRate !== undefined && Math.random() < faults.timeoutRate;
    const hit = new PortalHit(portal, {
      userId: caller.userId,
      appCall: caller.app === null ? undefined : { authConnector: caller.app.authConnector },
    });
    let call;
    try {
      call = await this.runner.run({ portal, caller, hit }, method, params, 'request');
    } finally {
      this.emulator.events.finishHit(hit);
    }
    if (withheld) return 'withheld';
    if (!call.ok) return { status: call.error.httpStatus, body: call.error.toEnvelope() };
    const { result, next, total } = call.outcome;
    return {
      status: 200,
      body: {
        result,
        ...(next === undefined ? {} : { next }),
        ...(total === undefined ? {} : { total }),
        time: call.time,
      },
    };
  }
}

function errorCodeOf(body: unknown): string | undefined {
  const error = (body as { error?: unknown } | null)?.error;
  return typeof error === 'string' ? error : undefined;
}

/** 'ok', the error code, or 'error' for an error without one (CRM's "Not found"). */
function outcomeOf(code: string | undefined): string {
  return code === undefined ? 'ok' : code || 'error';
}
