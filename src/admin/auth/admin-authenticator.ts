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
import { SharedLimit, SharedLimits } from '../../shared-limits/shared-limits';

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
 * token must match. An address that sent too many wrong tokens in a minute (counted across
 * replicas) gets 429 instead of 401 for the rest of that minute, but the right token still passes. Both sides are hashed to
 * fixed-length digests before a constant-time compare, so neither the content nor the length of
 * the token leaks through timing. Only wrong tokens count as guesses.
 */
@Injectable()
export class AdminAuthenticator {
  private readonly expectedDigest: Buffer | undefined;
  private readonly failures: SharedLimit;
  private readonly log: Logger;
  private readonly refusals: Counter<'reason'>;

  constructor(
    config: AppConfig,
    logger: AppLogger,
    metrics: MetricsRegistry,
    limits: SharedLimits,
  ) {
    this.expectedDigest = config.admin.token === undefined ? undefined : digest(config.admin.token);
    // Counted in the database: every replica sees the same failures of an address.
    this.failures = limits.limit({
      name: 'admin_auth_failures',
      points: config.admin.maxFailedAttemptsPerMinute,
      windowSeconds: 60,
    });
    this.log = logger.child('admin-auth');
    this.refusals = metrics.counter(
      'admin_auth_refusals_total',
      'Admin API requests refused before reaching a route, by reason',
      ['reason'],
    );
  }

  /** Returns when the credentials are good; throws the admin error to answer otherwise. */
  async authenticate(credentials: AdminCredentials): Promise<void> {
    if (this.expectedDigest === undefined) {
      this.refusals.inc({ reason: 'disabled' });
      throw new AdminApiDisabledError();
    }
    const presented = bearerTokenOf(credentials.authorization);
    if (presented === undefined) {
      this.refusals.inc({ reason: 'missing' });
      throw AdminUnauthenticatedError.missing();
    }
    // The right token always passes: behind a NAT, one stale script sending a wrong token must
    // not lock the operator out. Only the guessers behind that address are throttled.
    if (timingSafeEqual(digest(presented), this.expectedDigest)) return;
    const failure = await this.failures.take(credentials.ip);
    if (!failure.allowed) {
      this.refusals.inc({ reason: 'rate_limited' });
      throw new TooManyFailedAttemptsError(Math.max(1, Math.ceil(failure.msBeforeNext / 1000)));
    }
    this.refusals.inc({ reason: 'invalid' });
    this.log.warn(
      { ip: credentials.ip, route: credentials.route, failures: failure.taken },
      'admin request with a wrong bearer token',
    );
    throw AdminUnauthenticatedError.invalid();
  }
}
