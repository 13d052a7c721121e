import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { PortalDomainMoves } from '../portals/domain-move.service';
import { portalLocationOf } from '../portals/oauth-answer';
import { PortalStatusService } from '../portals/portal-status.service';
import { TokenVault } from '../portals/token-vault.service';
import { UserTokenVault } from '../portals/user-token-vault.service';
import {
  Bitrix24ApiError,
  Bitrix24ClientStoppedError,
  Bitrix24UserNotAuthorizedError,
  OAuthError,
  TRANSPORT_ERROR_CODES,
  withoutSecret,
} from './bitrix24-api.error';
import { Bitrix24Http, HttpAnswer, HttpTransportFailure, originOf } from './bitrix24-http';
import type { RestResponse } from './bitrix24.types';
import { classifyRestError, statusForPortalGone } from './error-classification';
import { OfflineCallTimeout } from './offline-call-timeout';
import { OperatingTimeTracker } from './operating-time.tracker';
import { PortalDirectory } from './portal-directory';
import { PortalRateLimiter } from './portal-rate-limiter';
import { redirectTarget } from './portal-redirect';
import { RetryPolicy } from './retry-policy';

/**
 * An OPERATION_TIME_LIMIT whose window resets later than this is not retried: the method is parked
 * and its callers told at once (a drain or a handler comes back later).
 */
const MAX_OPERATING_WAIT_MS = 15_000;

/** Refusals: Bitrix24 turned the request away before running it, so repeating it is always safe. */
const REFUSED_BEFORE_RUNNING = new Set<string>([
  'QUERY_LIMIT_EXCEEDED',
  'OPERATION_TIME_LIMIT',
  'OVERLOAD_LIMIT',
]);

export interface RestCallOptions {
  /**
   * False for a call that changes state as it answers and cannot be repeated to the same effect
   * (event.offline.get reserves or deletes rows): a failure after which it may have run (timeout,
   * network error, 5xx) is thrown at once instead of retried. Refusals are still retried.
   */
  readonly repeatable?: boolean;
  /**
   * The user the call is made as: that user's own chain (from the app frame) authorizes it instead
   * of the portal's. The portal's bucket, retries and status handling are the same.
   */
  readonly actor?: { readonly userId: number };
  /**
   * An offline-queue call: its wait for an answer follows the portal's answer times
   * (OfflineCallTimeout) instead of the generic BITRIX24_REQUEST_TIMEOUT_MS.
   */
  readonly offlineQueue?: boolean;
  /**
   * How long an offline-queue call is expected to run on Bitrix24's side (a big backlog page):
   * its wait for an answer is that much longer (OfflineCallTimeout).
   */
  readonly expectedRunMs?: number;
}

/**
 * Whether a failed request may nonetheless have run on Bitrix24's side: its answer was lost
 * (timeout, network error) or the server failed (5xx) after the request was sent. Token-endpoint
 * failures and refusals happen before the REST request runs.
 */
export function mayHaveRun(error: unknown): boolean {
  return (
    error instanceof Bitrix24ApiError &&
    !(error instanceof OAuthError) &&
    error.category === 'retryable' &&
    !REFUSED_BEFORE_RUNNING.has(error.bitrixCode)
  );
}

/**
 * Runs one REST request to one portal with everything around it: the portal must be callable, the
 * token comes from the vault, the request waits its turn in the portal's bucket, and the answer is
 * classified by Bitrix24's `error` code: retryable errors back off and try again, an auth error
 * refreshes the token once, a portal-gone error changes the portal's status, anything else is the
 * caller's to handle.
 */
@Injectable()
export class RestCallExecutor implements OnApplicationShutdown {
  private readonly stopping = new AbortController();
  private readonly retryPolicy = new RetryPolicy();
  private readonly log: Logger;
  private readonly requests: Counter<'method' | 'outcome'>;
  private readonly duration: Histogram<'method'>;
  private readonly bucketWait: Histogram;

  constructor(
    private readonly http: Bitrix24Http,
    private readonly directory: PortalDirectory,
    private readonly vault: TokenVault,
    private readonly portalStatus: PortalStatusService,
    private readonly rateLimiter: PortalRateLimiter,
    private readonly operatingTime: OperatingTimeTracker,
    private readonly dataSource: DataSource,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
    private readonly domainMoves: PortalDomainMoves,
    private readonly userVault: UserTokenVault,
    private readonly offlineTimeout: OfflineCallTimeout,
  ) {
    this.log = appLogger.child('bitrix24-client');
    this.requests = metrics.counter(
      'bitrix24_requests_total',
      'REST requests sent to Bitrix24, by method and outcome (ok or the error code)',
      ['method', 'outcome'],
    );
    this.duration = metrics.histogram(
      'bitrix24_request_duration_seconds',
      'Time from sending a REST request to its answer',
      ['method'],
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.bucketWait = metrics.histogram(
      'bitrix24_rate_limit_wait_seconds',
      "Time a request waited for room in its portal's leaky bucket",
      [],
      [0.01, 0.1, 0.5, 1, 5, 15, 60],
    );
  }

  /** Waiting and sleeping calls give up at shutdown instead of holding the process. */
  onApplicationShutdown(): void {
    this.stopping.abort(new Bitrix24ClientStoppedError());
  }

  async execute(
    memberId: string,
    method: string,
    params: Record<string, unknown>,
    options: RestCallOptions = {},
  ): Promise<RestResponse<unknown>> {
    let attempts = 0;
    let refreshedAfterAuthError = false;
    let retriedWithNewerChain = false;
    /** Set after an auth error: the generation whose access token Bitrix24 rejected. */
    let rejectedGeneration: number | undefined;
    /** A call made as a user: set after an auth error, the user's access token Bitrix24 rejected. */
    let rejectedUserToken: string | undefined;
    const { actor } = options;
    /** Set once the portal answered with a redirect to its new address (at most one per call). */
    let redirectedTo: string | undefined;
    for (;;) {
      const target = await this.directory.callableTarget(memberId);
      const parkedMs = attempts === 0 ? this.operatingTime.parkedMs(memberId, method) : 0;
      if (parkedMs > 0) {
        // Blocked by its operating-time limit: only this method waits, nothing is sent.
        throw new Bitrix24ApiError(
          'OPERATION_TIME_LIMIT',
          `parked for ${Math.ceil(parkedMs / 1000)} s more after Bitrix24's operating-time limit`,
          429,
          method,
          'retryable',
        );
      }
      const bucket = this.rateLimiter.bucketFor(memberId, target.rateLimit);
      let error: Bitrix24ApiError;
      let generation: number | undefined;
      let accessToken: string | undefined;
      try {
        if (rejectedGeneration !== undefined) {
          await this.vault.refresh(memberId, { staleGeneration: rejectedGeneration });
          rejectedGeneration = undefined;
        }
        if (actor && rejectedUserToken !== undefined) {
          await this.userVault.refresh(memberId, actor.userId, rejectedUserToken);
          rejectedUserToken = undefined;
        }
        const token = actor
          ? { accessToken: await this.userVault.accessTokenFor(memberId, actor.userId) }
          : await this.vault.accessTokenFor(memberId);
        generation = 'generation' in token ? token.generation : undefined;
        accessToken = token.accessToken;
        const waitStartedAt = performance.now();
        await bucket.acquire(this.stopping.signal);
        this.bucketWait.observe((performance.now() - waitStartedAt) / 1000);
        attempts += 1;
        const sentAt = performance.now();
        const baseUrl = redirectedTo ?? target.restBaseUrl;
        const outcome = await this.http.post(
          `${baseUrl}/${method}`,
          { json: { ...params, auth: token.accessToken } },
          this.stopping.signal,
          options.offlineQueue
            ? this.offlineTimeout.timeoutMs(memberId, options.expectedRunMs)
            : undefined,
        );
        const elapsedMs = performance.now() - sentAt;
        this.duration.observe({ method }, elapsedMs / 1000);
        if (options.offlineQueue) {
          if (
            outcome.kind === 'transport_failure' &&
            outcome.code === TRANSPORT_ERROR_CODES.timeout
          ) {
            this.offlineTimeout.timedOut(memberId);
          } else if (outcome.kind !== 'transport_failure') {
            this.offlineTimeout.answered(memberId, elapsedMs, options.expectedRunMs);
          }
        }
        let answer: RestResponse<unknown> | Bitrix24ApiError;
        if (outcome.kind === 'redirect') {
          const next = redirectTarget(outcome, baseUrl, redirectedTo !== undefined, method);
          if (typeof next === 'string') {
            this.requests.inc({ method, outcome: 'redirect' });
            this.log.info(
              { memberId, method, from: originOf(baseUrl), to: originOf(next) },
              'portal answered with a redirect to another host: re-sending the call there once',
            );
            redirectedTo = next;
            continue;
          }
          this.log.warn(
            { memberId, method, bitrixCode: next.bitrixCode, status: outcome.status },
            'portal redirect not followed',
          );
          answer = next;
        } else {
          answer = this.interpret(outcome, method, token.accessToken);
        }
        if (!(answer instanceof Bitrix24ApiError)) {
          bucket.recordSuccess();
          this.requests.inc({ method, outcome: 'ok' });
          this.operatingTime.record(memberId, method, answer.time);
          if (redirectedTo !== undefined) await this.moved(memberId, redirectedTo);
          return answer;
        }
        this.requests.inc({ method, outcome: answer.bitrixCode });
        error = answer;
      } catch (thrown) {
        // Only a transient failure to get a token (the OAuth server did not answer) is retried.
        if (!(thrown instanceof OAuthError && thrown.category === 'retryable')) throw thrown;
        attempts += 1;
        error = thrown;
      }

      if (error.category === 'auth' && !(error instanceof OAuthError)) {
        if (refreshedAfterAuthError) throw error;
        refreshedAfterAuthError = true;
        if (actor) rejectedUserToken = accessToken;
        else rejectedGeneration = generation;
        this.log.debug(
          { memberId, userId: actor?.userId, method, bitrixCode: error.bitrixCode, generation },
          'access token rejected: refreshing once',
        );
        continue;
      }
      if (error.category === 'portal_gone') {
        // A token from before a re-install (handled by another replica) looks like a gone app.
        if (
          generation !== undefined &&
          !retriedWithNewerChain &&
          (await this.vault.hasNewerChain(memberId, generation))
        ) {
          retriedWithNewerChain = true;
          continue;
        }
        if (actor) {
          await this.userChainGone(memberId, actor.userId, accessToken, error);
          throw error;
        }
        await this.portalGone(memberId, error);
        throw error;
      }
      if (error.category !== 'retryable') throw error;
      if (options.repeatable === false && mayHaveRun(error)) {
        this.log.warn(
          { memberId, method, bitrixCode: error.bitrixCode, attempts },
          'Bitrix24 request may have run without an answer: not repeated',
        );
        throw error;
      }

      if (error.bitrixCode === 'QUERY_LIMIT_EXCEEDED') bucket.penalize();
      if (
        error.bitrixCode === 'OPERATION_TIME_LIMIT' &&
        this.operatingTime.park(memberId, method) > MAX_OPERATING_WAIT_MS
      ) {
        throw error;
      }
      const earliestMs =
        error.bitrixCode === 'OPERATION_TIME_LIMIT'
          ? this.operatingTime.msUntilReset(memberId, method)
          : 0;
      const delayMs = this.retryPolicy.delayBeforeRetry(error, attempts, earliestMs);
      if (delayMs === null) {
        this.log.warn(
          { memberId, method, bitrixCode: error.bitrixCode, attempts },
          'Bitrix24 request failed after all retries',
        );
        throw error;
      }
      this.log.debug(
        { memberId, method, bitrixCode: error.bitrixCode, attempts, delayMs },
        'Bitrix24 request failed: backing off',
      );
      await this.pause(delayMs);
    }
  }

  /** The success body, or the failure as a classified error (with our token scrubbed from it). */
  private interpret(
    outcome: HttpAnswer | HttpTransportFailure,
    method: string,
    accessToken: string,
  ): RestResponse<unknown> | Bitrix24ApiError {
    const failure = (code: string, description: string, status: number): Bitrix24ApiError =>
      new Bitrix24ApiError(
        code,
        withoutSecret(description, accessToken),
        status,
        method,
        classifyRestError(code, status),
      );
    if (outcome.kind === 'transport_failure') {
      return failure(outcome.code, outcome.description, outcome.status);
    }
    const { body, status } = outcome;
    if (typeof body.error === 'string') {
      return failure(
        body.error,
        typeof body.error_description === 'string' ? body.error_description : '',
        status,
      );
    }
    if (!('result' in body)) {
      return failure(TRANSPORT_ERROR_CODES.invalidResponse, 'an answer without result', status);
    }
    return body as unknown as RestResponse<unknown>;
  }

  /**
   * A call re-sent to the address a redirect named has succeeded there: the portal has moved. The
   * call's answer is returned even if recording the move fails: the next call is redirected again.
   */
  private async moved(memberId: string, restBaseUrl: string): Promise<void> {
    const location = portalLocationOf(`${restBaseUrl}/`);
    if (!location) return;
    try {
      await this.domainMoves.move(memberId, location);
    } catch (error) {
      this.log.warn(
        { memberId, to: originOf(restBaseUrl), reason: (error as Error).message.slice(0, 200) },
        'portal answered at its new address but the move was not stored',
      );
    }
  }

  /**
   * A user's call was answered as if the app were gone. A user's chain from before a re-install
   * answers so too, and a user's token is no authority on the installation: the portal's own chain
   * decides, with one app.info. If the portal answers it the same, that call has acted on the
   * portal as any portal-gone answer does; if the portal answers it, the user's chain belongs to
   * an earlier installation and is dropped (the user must open the app again).
   */
  private async userChainGone(
    memberId: string,
    userId: number,
    accessToken: string | undefined,
    error: Bitrix24ApiError,
  ): Promise<void> {
    try {
      await this.execute(memberId, 'app.info', {});
    } catch (portalError) {
      this.log.warn(
        {
          memberId,
          userId,
          bitrixCode: error.bitrixCode,
          portalCode: portalError instanceof DomainError ? portalError.code : undefined,
        },
        "a user's call found the app gone and so did the portal's check",
      );
      return;
    }
    if (accessToken !== undefined) await this.userVault.forget(memberId, userId, accessToken);
    this.log.warn(
      { memberId, userId, bitrixCode: error.bitrixCode },
      "a user's chain belongs to an earlier installation of the app: dropped",
    );
    throw new Bitrix24UserNotAuthorizedError(memberId, userId, 'installation_replaced');
  }

  /**
   * The installation is gone (or unpaid): the portal's status changes so no more traffic goes
   * there, and a gone installation's tokens are wiped with it.
   */
  private async portalGone(memberId: string, error: Bitrix24ApiError): Promise<void> {
    const status = statusForPortalGone(error.bitrixCode);
    try {
      await this.dataSource.transaction(async (manager) => {
        await this.portalStatus.transition(
          memberId,
          status,
          `Bitrix24 answered ${error.bitrixCode} to ${error.method}`,
          manager,
        );
        if (status === 'uninstalled') await this.vault.wipe(memberId, manager);
      });
      this.log.warn(
        { memberId, method: error.method, bitrixCode: error.bitrixCode, status },
        'portal is gone: no more calls to it',
      );
    } catch (transitionError) {
      // Another path (an uninstall event, the operator) moved the portal first.
      this.log.warn(
        {
          memberId,
          bitrixCode: error.bitrixCode,
          code: transitionError instanceof DomainError ? transitionError.code : undefined,
        },
        'portal status not changed after a portal-gone answer',
      );
    }
  }

  private async pause(delayMs: number): Promise<void> {
    try {
      await sleep(delayMs, undefined, { signal: this.stopping.signal });
    } catch {
      throw this.stopping.signal.reason;
    }
  }
}
