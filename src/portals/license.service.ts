import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource } from 'typeorm';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { PortalDirectory } from '../bitrix24/portal-directory';
import type { PortalRestClient } from '../bitrix24/portal-rest.client';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import {
  LICENSE_STATES,
  licenseColumnsFrom,
  licenseOf,
  licenseStateCondition,
  type PortalLicense,
} from './portal-license';
import { PortalStatusService } from './portal-status.service';
import { LruMap } from '../common/lru-map';

/** An event may ask for an app.info re-read of its portal at most this often (all replicas). */
export const LICENSE_READ_MIN_INTERVAL_MS = 60_000;
/** Every active portal's app.info is read again within a day of the last read. */
const DAILY_MS = 24 * 60 * 60 * 1000;
/** Taken off each next daily read at random, so portals never converge on one moment. */
const DAILY_JITTER_MS = 30 * 60 * 1000;
/** A read that failed is tried again after this long. */
const RETRY_AFTER_FAILURE_MS = 60 * 60 * 1000;
/** Bounds the in-process memory of recent requests (a flood of made-up member ids). */
const MAX_REMEMBERED_REQUESTS = 100_000;

export type LicenseReadRequest = 'requested' | 'throttled';

/**
 * The app's license on each portal, from app.info (contract §9, §11): read at install and every
 * rebind, when ONAPPPAYMENT asks (at most once a minute per portal, however many arrive), when a
 * portal comes back from PAYMENT_REQUIRED, and at least daily. Bitrix24's PAYMENT_REQUIRED answer
 * marks the license expired at once, since the portal then refuses the chain app.info would need.
 */
@Injectable()
export class LicenseService implements OnApplicationShutdown {
  private readonly log: Logger;
  private readonly reads: Counter<'trigger' | 'outcome'>;
  /** member_id → when this process last asked for a read (saves the database a flood's queries). */
  private readonly recentRequests = new LruMap<string, number>(MAX_REMEMBERED_REQUESTS);
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopping = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly bitrix24: Bitrix24Client,
    private readonly directory: PortalDirectory,
    portalStatus: PortalStatusService,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('license');
    this.reads = metrics.counter(
      'bitrix24_license_reads_total',
      'app.info reads of portals, by what asked for them and outcome (ok or the error code)',
      ['trigger', 'outcome'],
    );
    const count = (): Promise<Record<string, number>> => this.countByState();
    metrics.gauge(
      'portals_by_license_state',
      'Active portals by license state: paid, trial, free, local, expired, unknown (all replicas)',
      ['state'],
      async function () {
        const counts = await count();
        for (const state of LICENSE_STATES) this.set({ state }, counts[state] ?? 0);
      },
    );
    portalStatus.onTransition((memberId, status, from) => {
      if (status === 'payment_required') this.track(this.markExpired(memberId));
      // Back from PAYMENT_REQUIRED: what the license is now (an install reads it as it binds).
      if (status === 'active' && from === 'payment_required') {
        void this.requestRead(memberId, 'reactivated');
      }
    });
  }

  onApplicationShutdown(): void {
    this.stopping = true;
  }

  /** Lets reads started in the background finish (tests and shutdown wait on this). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Reads app.info now and stores version and license; answers the license, or null when the read
   * failed (logged; the last known license stays, and the next read is due in an hour).
   */
  async read(
    memberId: string,
    trigger: string,
    client: PortalRestClient = this.bitrix24.operationsFor(memberId),
  ): Promise<PortalLicense | null> {
    try {
      const info = await client.appInfo();
      const columns = licenseColumnsFrom(info ?? {});
      await this.dataSource.query(
        `UPDATE portals
            SET app_version = COALESCE($2, app_version), license_status = $3,
                license_payment_expired = $4, license_days = $5,
                license_family = COALESCE($6, license_family), license_checked_at = now(),
                license_check_due_at = now() + $7 * interval '1 millisecond'
          WHERE member_id = $1`,
        [
          memberId,
          columns.appVersion,
          columns.licenseStatus,
          columns.licensePaymentExpired,
          columns.licenseDays,
          columns.licenseFamily,
          DAILY_MS - Math.round(Math.random() * DAILY_JITTER_MS),
        ],
      );
      // The plan family sets the portal's rate limit.
      this.directory.forget(memberId);
      this.reads.inc({ trigger, outcome: 'ok' });
      return licenseOf({ ...columns, licenseCheckedAt: new Date() });
    } catch (error) {
      const code = error instanceof DomainError ? error.code : 'error';
      const bitrixCode = (error as { bitrixCode?: unknown }).bitrixCode;
      this.reads.inc({ trigger, outcome: typeof bitrixCode === 'string' ? bitrixCode : code });
      this.log.warn(
        { memberId, trigger, code, bitrixCode },
        'app.info not read; the last known license stays',
      );
      await this.dataSource
        .query(
          `UPDATE portals SET license_check_due_at = now() + $2 * interval '1 millisecond'
            WHERE member_id = $1`,
          [memberId, RETRY_AFTER_FAILURE_MS],
        )
        .catch(() => undefined);
      return null;
    }
  }

  /**
   * Asks for an app.info re-read in the background, at most once a minute per portal whatever
   * arrives and on however many replicas: the claim is a conditional UPDATE of the portal's row.
   */
  requestRead(memberId: string, trigger: string): Promise<LicenseReadRequest> {
    const now = Date.now();
    const last = this.recentRequests.get(memberId);
    if (last !== undefined && now - last < LICENSE_READ_MIN_INTERVAL_MS) {
      this.reads.inc({ trigger, outcome: 'throttled' });
      return Promise.resolve('throttled');
    }
    this.recentRequests.set(memberId, now);
    const claim = this.claimRead(memberId).then((claimed): LicenseReadRequest => {
      if (!claimed || this.stopping) {
        this.reads.inc({ trigger, outcome: 'throttled' });
        return 'throttled';
      }
      this.track(this.read(memberId, trigger));
      return 'requested';
    });
    this.track(claim);
    return claim;
  }

  /**
   * Reads the portals whose daily read is due, oldest due first, at most `limit` of them. Each is
   * claimed for an hour first (SKIP LOCKED), so replicas running this at once take different ones.
   */
  async readDue(limit: number, signal?: AbortSignal): Promise<number> {
    // An UPDATE answers [rows, affected count].
    const [due] = await this.dataSource.query<[{ member_id: string }[], number]>(
      `UPDATE portals SET license_check_due_at = now() + $2 * interval '1 millisecond'
        WHERE member_id IN (
          SELECT member_id FROM portals
           WHERE status = 'active' AND license_check_due_at <= now()
           ORDER BY license_check_due_at
           LIMIT $1
           FOR UPDATE SKIP LOCKED)
        RETURNING member_id`,
      [limit, RETRY_AFTER_FAILURE_MS],
    );
    for (const { member_id: memberId } of due) {
      if (signal?.aborted || this.stopping) break;
      await this.read(memberId, 'daily');
    }
    return due.length;
  }

  /** PAYMENT_REQUIRED: Bitrix24 itself says the license is over. */
  private async markExpired(memberId: string): Promise<void> {
    try {
      await this.dataSource.query(
        `UPDATE portals SET license_payment_expired = TRUE, license_checked_at = now()
          WHERE member_id = $1`,
        [memberId],
      );
    } catch (error) {
      this.log.warn({ err: error, memberId }, 'expired license not recorded');
    }
  }

  private async claimRead(memberId: string): Promise<boolean> {
    try {
      const [rows] = await this.dataSource.query<[unknown[], number]>(
        `UPDATE portals SET license_read_requested_at = now()
          WHERE member_id = $1 AND status = 'active'
            AND (license_read_requested_at IS NULL
                 OR license_read_requested_at <= now() - $2 * interval '1 millisecond')
          RETURNING member_id`,
        [memberId, LICENSE_READ_MIN_INTERVAL_MS],
      );
      return rows.length > 0;
    } catch (error) {
      this.log.warn({ err: error, memberId }, 'app.info re-read not claimed');
      return false;
    }
  }

  private track(work: Promise<unknown>): void {
    const settled = work.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
  }

  private async countByState(): Promise<Record<string, number>> {
    const selects = LICENSE_STATES.map(
      (state) => `count(*) FILTER (WHERE ${licenseStateCondition(state)})::int AS "${state}"`,
    ).join(', ');
    const [row]: Record<string, number>[] = await this.dataSource.query(
      `SELECT ${selects} FROM portals p WHERE p.status IN ('active','payment_required')`,
    );
    return row ?? {};
  }
}
