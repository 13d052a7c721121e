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
    let outcome: MethodOutcome;
    try {
      outcome = await this.execute(context, method, params, route);
    } catch (error) {
      if (error instanceof RestError) return { ok: false, error };
      throw error;
    } finally {
      // The outer batch is not counted; each nested command counts on its own method (§8).
      if (accounted && method !== 'batch' && REST_METHODS.has(method)) {
        portal.operatingTime.record(method, (performance.now() - startedAt) / 1000);
      }
    }
    return { ok: true, outcome, time: this.timeBlock(portal, method, startedMs, startedAt) };
  }

  private async execute(
    context: CallContext,
    method: string,
    params: Readonly<Record<string, unknown>>,
    route: CallRoute,
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
    const budget = faulty ? faults.operatingLimitSeconds : undefined;
    if (budget !== undefined && portal.operatingTime.usage(method).operatingSeconds > budget) {
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
