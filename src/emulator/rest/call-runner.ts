import { setTimeout as delay } from 'node:timers/promises';
import type { Emulator } from '../emulator';
import type { PortalHit } from '../events/event-dispatcher';
import type { Portal } from '../portals/portal';
import { faultsConcern } from '../portals/portal-faults';
import { formatPortalDateTime } from '../portals/portal-time';
import { REST_METHODS } from './method-catalog';
import { MethodParams } from './method-params';
import { RestError, restErrors } from './rest-error';
import type { CallOutcome, Caller, MethodCall, MethodOutcome, TimeBlock } from './rest-method';

/**
 * How a call reached the portal: as an HTTP request of its own, as a command of a batch, or as a
 * user's action in the portal UI (no faults, no REST accounting).
 */
export type CallRoute = 'request' | 'nested' | 'portal-ui';

/**
 * The method whose operating time a call adds to, or undefined when it adds to none: with
 * per-command billing (the docs) the outer batch is not counted and each command counts on its own
 * method; with batch billing (measured, b24jssdk PR #539) everything in a batch counts on `batch`.
 */
function billedMethod(portal: Portal, method: string, route: CallRoute): string | undefined {
  if (!REST_METHODS.has(method)) return undefined;
  const wholeBatch = portal.operatingTime.settings.batchBilling === 'batch';
  if (method === 'batch') return wholeBatch ? 'batch' : undefined;
  return route === 'nested' && wholeBatch ? 'batch' : method;
}

export interface CallContext {
  readonly portal: Portal;
  readonly caller: Caller;
  readonly hit: PortalHit;
}

/** Runs one REST method call: per-call faults, scope, operating time, the method itself. */
export class RestCallRunner {
  constructor(private readonly emulator: Emulator) {}

  async run(
    context: CallContext,
    method: string,
    params: Readonly<Record<string, unknown>>,
    route: CallRoute,
  ): Promise<CallOutcome> {
    const { portal } = context;
    const startedMs = this.emulator.clock.now();
    const startedAt = performance.now();
    const accounted = route !== 'portal-ui';
    if (accounted) portal.counters.countCall(method);
    const billedTo = accounted ? billedMethod(portal, method, route) : undefined;
    // An outer batch billed as `batch` carries its commands' time, which they record as they run.
    const billedOwnTime = method === 'batch' ? undefined : billedTo;
    let outcome: MethodOutcome;
    try {
      outcome = await this.execute(context, method, params, route, billedTo);
    } catch (error) {
      if (billedOwnTime !== undefined) {
        portal.operatingTime.record(billedOwnTime, (performance.now() - startedAt) / 1000);
      }
      if (error instanceof RestError) return { ok: false, error };
      throw error;
    }
    if (billedOwnTime !== undefined) {
      const modelled = portal.operatingTime.modelledSeconds(method, outcome.rows ?? 0);
      if (modelled === undefined) {
        portal.operatingTime.record(billedOwnTime, (performance.now() - startedAt) / 1000);
      } else {
        // The portal spends the time it bills: the answer comes no sooner.
        const left = modelled * 1000 - (performance.now() - startedAt);
        if (left > 0) await delay(left);
        portal.operatingTime.record(billedOwnTime, modelled);
      }
    }
    return {
      ok: true,
      outcome,
      time: this.timeBlock(portal, billedTo ?? method, startedMs, startedAt),
    };
  }

  private async execute(
    context: CallContext,
    method: string,
    params: Readonly<Record<string, unknown>>,
    route: CallRoute,
    billedTo: string | undefined,
  ): Promise<MethodOutcome> {
    const { portal, caller, hit } = context;
    const faults = portal.faults;
    const faulty = route !== 'portal-ui' && faultsConcern(faults, method, route === 'request');
    if (faulty && faults.latencyMs !== undefined && faults.latencyMs > 0) {
      await delay(faults.latencyMs);
    }
    if (faulty && faults.errorRate !== undefined && Math.random() < faults.errorRate) {
      throw restErrors.internalServerError();
    }
    const definition = REST_METHODS.get(method);
    if (definition === undefined) throw restErrors.methodNotFound();
    if (faulty && faults.insufficientScope !== undefined) {
      throw restErrors.insufficientScope(faults.insufficientScope);
    }
    if (
      definition.scope !== null &&
      caller.app !== null &&
      !caller.app.scopes.includes(definition.scope)
    ) {
      throw restErrors.insufficientScope(401);
    }
    if (faulty && faults.wrongLicense === true) throw restErrors.wrongLicense(method);
    // A batch billed as a whole is checked once, before its first command.
    const checked = billedTo !== undefined && !(route === 'nested' && billedTo === 'batch');
    const limit =
      faulty && faults.operatingLimitSeconds !== undefined
        ? faults.operatingLimitSeconds
        : portal.operatingTime.settings.limitSeconds;
    if (checked && portal.operatingTime.blocked(billedTo, limit)) {
      portal.counters.operatingLimitRefusals++;
      throw restErrors.operationTimeLimit();
    }
    const call: MethodCall = {
      emulator: this.emulator,
      portal,
      caller,
      hit,
      params: new MethodParams(params),
      runNested: (nestedMethod, nestedParams) =>
        this.run(
          context,
          nestedMethod,
          nestedParams,
          route === 'portal-ui' ? 'portal-ui' : 'nested',
        ),
    };
    return definition.run(call);
  }

  private timeBlock(
    portal: Portal,
    method: string,
    startedMs: number,
    startedAt: number,
  ): TimeBlock {
    const seconds = (performance.now() - startedAt) / 1000;
    const finishedMs = startedMs + seconds * 1000;
    const usage = portal.operatingTime.usage(method);
    return {
      start: startedMs / 1000,
      finish: finishedMs / 1000,
      duration: seconds,
      processing: seconds,
      date_start: formatPortalDateTime(startedMs),
      date_finish: formatPortalDateTime(finishedMs),
      operating: usage.operatingSeconds,
      operating_reset_at: usage.resetAt,
    };
  }
}
