import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import type { DrainOutcome } from './drain-report';
import { DrainLeaseLostError } from './offline-queue.errors';

/** How the previous drain of the portal ended, as recorded on its state row. */
export interface PreviousDrain {
  /** It finished with outcome 'drained' (no crash, no failure, no interruption since). */
  cleanlyFinished: boolean;
  adoptionCheckedAt: Date | null;
  /**
   * The ledger held batches committed but not confirmed cleared, as of the acquire statement's
   * snapshot. Only a lease holder commits, but a holder whose commit held the state row's lock
   * while the statement waited can add one the snapshot misses; that takeover is never clean.
   */
  hasUnclearedBatches: boolean;
}

/**
 * This process's hold on one portal's drain. `token` is the fencing number: it grows on every
 * takeover, and every commit re-checks it together with the holder and the expiry.
 */
export class DrainLease {
  private lost = false;
  renewal: NodeJS.Timeout | undefined;

  constructor(
    readonly memberId: string,
    readonly holder: string,
    readonly token: string,
    /** Local clock: until when the lease is surely ours (measured from before the last renewal was sent). */
    private validUntil: number,
    readonly previous: PreviousDrain,
  ) {}

  /** Throws when the lease is (or may be) no longer ours; checked before every Bitrix24 call. */
  ensureHeld(): void {
    if (this.lost || Date.now() >= this.validUntil) throw new DrainLeaseLostError(this.memberId);
  }

  get held(): boolean {
    return !this.lost && Date.now() < this.validUntil;
  }

  extended(validUntil: number): void {
    this.validUntil = Math.max(this.validUntil, validUntil);
  }

  markLost(): void {
    this.lost = true;
  }
}

/**
 * The per-portal drain lease in offline_queue_states: one drainer per portal across all replicas.
 * Times come from Postgres's clock, so replicas with skewed clocks agree on expiry.
 */
@Injectable()
export class DrainLeaseService {
  /** Identifies this process as a lease holder; unique per start, so a restart never inherits. */
  readonly holder = `${hostname().slice(0, 80)}/${process.pid}/${randomBytes(6).toString('hex')}`;
  private readonly log: Logger;
  private readonly leaseMs: number;

  constructor(
    private readonly dataSource: DataSource,
    config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('offline-queue');
    this.leaseMs = config.drain.leaseSeconds * 1000;
  }

  /** Takes the portal's lease if it is free or expired; null when another drain holds it. */
  async acquire(memberId: string): Promise<DrainLease | null> {
    const sentAt = Date.now();
    const rows: {
      lease_token: string;
      clean: boolean | null;
      last_adoption_check_at: Date | null;
      uncleared: boolean;
    }[] = await this.dataSource.query(
      `WITH previous AS (
         SELECT last_drain_outcome = 'drained'
                  AND last_drain_finished_at >= last_drain_started_at AS clean,
                last_adoption_check_at
         FROM offline_queue_states WHERE member_id = $1),
       taken AS (
         INSERT INTO offline_queue_states AS s
           (member_id, lease_holder, lease_token, lease_expires_at, last_drain_started_at)
         VALUES ($1, $2, 1, now() + make_interval(secs => $3), now())
         ON CONFLICT (member_id) DO UPDATE
           SET lease_holder = EXCLUDED.lease_holder,
               lease_token = s.lease_token + 1,
               lease_expires_at = EXCLUDED.lease_expires_at,
               last_drain_started_at = EXCLUDED.last_drain_started_at,
               drain_requested_at = NULL
           WHERE s.lease_expires_at IS NULL OR s.lease_expires_at <= now()
         RETURNING lease_token)
       SELECT taken.lease_token, previous.clean, previous.last_adoption_check_at,
              EXISTS (SELECT 1 FROM drain_batches
                      WHERE member_id = $1 AND state = 'committed') AS uncleared
       FROM taken LEFT JOIN previous ON true`,
      [memberId, this.holder, this.leaseMs / 1000],
    );
    if (rows.length === 0) return null;
    const [row] = rows;
    const lease = new DrainLease(
      memberId,
      this.holder,
      String(row.lease_token),
      sentAt + this.leaseMs,
      {
        cleanlyFinished: row.clean === true,
        adoptionCheckedAt: row.last_adoption_check_at,
        hasUnclearedBatches: row.uncleared,
      },
    );
    lease.renewal = setInterval(() => void this.renew(lease), Math.max(1000, this.leaseMs / 3));
    lease.renewal.unref();
    return lease;
  }

  /**
   * The lease is held elsewhere: leave a request on the state row, which the holder honours with
   * one more pass before it lets go (see releaseUnlessRequested), then try once more — the holder
   * may have let go in between, and then this caller drains. Either way the request is served.
   */
  async requestFromHolder(memberId: string): Promise<DrainLease | null> {
    await this.dataSource.query(
      `UPDATE offline_queue_states SET drain_requested_at = now() WHERE member_id = $1`,
      [memberId],
    );
    return this.acquire(memberId);
  }

  /**
   * Ends a successful pass: releases the lease unless another replica asked for a drain while the
   * pass ran. Then the request is taken (cleared) and false comes back: the caller runs one more
   * pass under the same lease. Both happen under the row lock, so no request falls in between.
   */
  async releaseUnlessRequested(
    lease: DrainLease,
    result: { outcome: DrainOutcome; events: number },
  ): Promise<boolean> {
    const [, released]: [unknown, number] = await this.dataSource.query(
      `UPDATE offline_queue_states
       SET lease_holder = NULL, lease_expires_at = now(), last_drain_finished_at = now(),
           last_drain_outcome = $4, last_drain_error = NULL, last_drain_events = $5::int,
           total_drained_events = total_drained_events + $5::int
       WHERE member_id = $1 AND lease_holder = $2 AND lease_token = $3
         AND drain_requested_at IS NULL`,
      [lease.memberId, lease.holder, lease.token, result.outcome, result.events],
    );
    if (released === 1) {
      clearInterval(lease.renewal);
      lease.markLost();
      return true;
    }
    const [, taken]: [unknown, number] = await this.dataSource.query(
      `UPDATE offline_queue_states SET drain_requested_at = NULL
       WHERE member_id = $1 AND lease_holder = $2 AND lease_token = $3 AND lease_expires_at > now()`,
      [lease.memberId, lease.holder, lease.token],
    );
    if (taken === 0) {
      lease.markLost();
      throw new DrainLeaseLostError(lease.memberId);
    }
    return false;
  }

  /**
   * Inside a commit transaction: re-checks that the lease is still ours (holder, fencing token,
   * not expired) and extends it. The row stays locked until the commit, so no takeover can slip
   * in between the check and the rows the transaction writes.
   */
  async confirm(manager: EntityManager, lease: DrainLease): Promise<void> {
    const sentAt = Date.now();
    if (!(await this.extend(manager, lease))) {
      lease.markLost();
      throw new DrainLeaseLostError(lease.memberId);
    }
    lease.extended(sentAt + this.leaseMs);
  }

  async recordAdoptionCheck(lease: DrainLease, checkedAt: Date): Promise<void> {
    await this.dataSource.query(
      `UPDATE offline_queue_states SET last_adoption_check_at = $4
       WHERE member_id = $1 AND lease_holder = $2 AND lease_token = $3`,
      [lease.memberId, lease.holder, lease.token, checkedAt],
    );
  }

  /**
   * Gives the lease back (expiry now) and records the pass. Only our own, current lease is touched.
   * A failure here is logged: the lease then simply expires.
   */
  async release(
    lease: DrainLease,
    result: { outcome: DrainOutcome; events: number; error?: string },
  ): Promise<void> {
    clearInterval(lease.renewal);
    try {
      await this.dataSource.query(
        `UPDATE offline_queue_states
         SET lease_holder = NULL, lease_expires_at = now(), last_drain_finished_at = now(),
             last_drain_outcome = $4, last_drain_error = $5, last_drain_events = $6::int,
             total_drained_events = total_drained_events + $6::int
         WHERE member_id = $1 AND lease_holder = $2 AND lease_token = $3`,
        [
          lease.memberId,
          lease.holder,
          lease.token,
          result.outcome,
          result.error?.slice(0, 1000) ?? null,
          result.events,
        ],
      );
    } catch (error) {
      this.log.warn(
        { err: error, memberId: lease.memberId },
        'could not release the drain lease; it expires on its own',
      );
    }
    lease.markLost();
  }

  private async renew(lease: DrainLease): Promise<void> {
    const sentAt = Date.now();
    try {
      if (await this.extend(this.dataSource.manager, lease)) {
        lease.extended(sentAt + this.leaseMs);
        return;
      }
      lease.markLost();
      clearInterval(lease.renewal);
      this.log.warn({ memberId: lease.memberId }, 'drain lease lost to another holder');
    } catch (error) {
      // The lease is still valid until its local expiry; the next renewal may get through.
      this.log.warn({ err: error, memberId: lease.memberId }, 'could not renew the drain lease');
    }
  }

  private async extend(manager: EntityManager, lease: DrainLease): Promise<boolean> {
    const [, count]: [unknown, number] = await manager.query(
      `UPDATE offline_queue_states SET lease_expires_at = now() + make_interval(secs => $4)
       WHERE member_id = $1 AND lease_holder = $2 AND lease_token = $3 AND lease_expires_at > now()`,
      [lease.memberId, lease.holder, lease.token, this.leaseMs / 1000],
    );
    return count === 1;
  }
}
