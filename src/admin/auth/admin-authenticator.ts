import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { AppLogger } from '../../logging/app-logger';
import { MetricsRegistry } from '../../metrics/metrics.registry';
import {
  AdminApiDisabledError,
  AdminUnauthenticatedError,
  TooManyFailedAttemptsError,
} from '../admin.errors';
import { FailedAttemptLimiter } from './failed-attempt-limiter';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The token from `Authorization: Bearer <token>`, or undefined when there is none. */
export function bearerTokenOf(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  return BEARER.exec(header)?.[1];
}

export interface AdminCredentials {
  /** Client address (behind a proxy: the forwarded one). */
  ip: string;
  authorization: string | string[] | undefined;
  /** For the log line of a refusal. */
  route: string | undefined;
}

/**
 * Decides whether a request may use the admin API: ADMIN_TOKEN must be configured and the bearer
 * token must match. An address that sent too many wrong tokens gets 429 instead of 401 for the
 * rest of its window, but the right token still passes. Both sides are hashed to
 * fixed-length digests before a constant-time compare, so neither the content nor the length of
 * the token leaks through timing. Only wrong tokens count as guesses.
 */
@Injectable()
export class AdminAuthenticator {
  private readonly expectedDigest: Buffer | undefined;
  private readonly limiter: FailedAttemptLimiter;
  private readonly log: Logger;
  private readonly refusals: Counter<'reason'>;

  constructor(config: AppConfig, logger: AppLogger, metrics: MetricsRegistry) {
    this.expectedDigest = config.admin.token === undefined ? undefined : digest(config.admin.token);
    this.limiter = new FailedAttemptLimiter(config.admin.maxFailedAttemptsPerMinute);
    this.log = logger.child('admin-auth');
    this.refusals = metrics.counter(
      'admin_auth_refusals_total',
      'Admin API requests refused before reaching a route, by reason',
      ['reason'],
    );
  }

  /** Returns when the credentials are good; throws the admin error to answer otherwise. */
  authenticate(credentials: AdminCredentials): void {
    if (this.expectedDigest === undefined) {
      this.refusals.inc({ reason: 'disabled' });
      throw new AdminApiDisabledError();
    }
    const presented = bearerTokenOf(credentials.authorization);
    // The right token always passes: behind a NAT, one stale script sending a wrong token must
    // not lock the operator out. Only the guessers behind that address are throttled.
    if (presented !== undefined && timingSafeEqual(digest(presented), this.expectedDigest)) return;
    const blockedForMs = this.limiter.blockedForMs(credentials.ip);
    if (blockedForMs > 0) {
      this.refusals.inc({ reason: 'rate_limited' });
      throw new TooManyFailedAttemptsError(Math.ceil(blockedForMs / 1000));
    }
    if (presented === undefined) {
      this.refusals.inc({ reason: 'missing' });
      throw AdminUnauthenticatedError.missing();
    }
    this.refusals.inc({ reason: 'invalid' });
    const failures = this.limiter.recordFailure(credentials.ip);
    this.log.warn(
      { ip: credentials.ip, route: credentials.route, failures },
      'admin request with a wrong bearer token',
    );
    throw AdminUnauthenticatedError.invalid();
  }
}
