import { OnApplicationShutdown } from '@nestjs/common';
import type { Pool, QueryConfig, QueryResult } from 'pg';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import {
  RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRes,
} from 'rate-limiter-flexible';

/** The table migration 1796700000000 creates; rate-limiter-flexible never runs DDL itself. */
export const SHARED_LIMITS_TABLE = 'shared_limits';

export interface SharedLimitOptions {
  /** Prefix of this limit's keys in the shared table, and its label in logs and metrics. */
  name: string;
  /** Attempts one key may take per window. */
  points: number;
  windowSeconds: number;
}

export interface LimitDecision {
  allowed: boolean;
  /** Attempts this key has taken in the current window, this one included. */
  taken: number;
  /** Until the window ends: when a refused key may try again. */
  msBeforeNext: number;
}

/**
 * One limit (attempts per key and fixed window) counted in Postgres, so every replica sees the
 * same counts. While the database does not answer, the library's insurance limiter counts in
 * this process's memory instead: a replica then allows its own share again, never nothing.
 */
export class SharedLimit {
  constructor(private readonly limiter: RateLimiterAbstract) {}

  /** Takes one attempt for `key`; refused once the window's points are used up. */
  async take(key: string): Promise<LimitDecision> {
    try {
      const taken = await this.limiter.consume(key);
      return { allowed: true, taken: taken.consumedPoints, msBeforeNext: taken.msBeforeNext };
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      return { allowed: false, taken: refusal.consumedPoints, msBeforeNext: refusal.msBeforeNext };
    }
  }

  /** The attempt did not count after all (nothing was sent for it): `key` gets it back. */
  async giveBack(key: string): Promise<void> {
    const left = await this.limiter.reward(key);
    // A window that ended meanwhile would start over with a credit: start it over clean instead.
    if (left.consumedPoints < 0) await this.limiter.delete(key);
  }
}

/**
 * Makes the shared limits, all in one table (`key`, `points`, `expire` as rate-limiter-flexible
 * defines it) reached through a small pool of their own: an unauthenticated flood then waits for
 * these few connections, never for the ones drains and handlers use, and a database that is away
 * fails fast (1 s) over to memory instead of holding requests for the app pool's 10 s.
 */
export class SharedLimits implements OnApplicationShutdown {
  private storeAnswers = true;
  private readonly storeFailures: Counter;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    storeFailures: Counter,
  ) {
    this.storeFailures = storeFailures;
    // An idle connection dropped by the server is replaced on the next query; not an outage.
    pool.on('error', (error) =>
      this.log.debug({ err: error }, 'idle shared-limits connection lost'),
    );
  }

  limit(options: SharedLimitOptions): SharedLimit {
    const common = {
      keyPrefix: options.name,
      points: options.points,
      duration: options.windowSeconds,
    };
    return new SharedLimit(
      new RateLimiterPostgres({
        ...common,
        storeClient: { query: (query: QueryConfig) => this.query(query) },
        storeType: 'client',
        tableName: SHARED_LIMITS_TABLE,
        tableCreated: true,
        insuranceLimiter: new RateLimiterMemory(common),
      }),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }

  /** Every query of the library passes here, so an outage is logged once, and its end too. */
  private async query(query: QueryConfig): Promise<QueryResult> {
    try {
      const result = await this.pool.query(query);
      if (!this.storeAnswers) {
        this.storeAnswers = true;
        this.log.info('shared limits: the database answers again, counting there');
      }
      return result;
    } catch (error) {
      this.storeFailures.inc();
      if (this.storeAnswers) {
        this.storeAnswers = false;
        this.log.warn(
          { err: error },
          'shared limits: the database does not answer, counting in this process only',
        );
      }
      throw error;
    }
  }
}
