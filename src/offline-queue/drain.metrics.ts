import { Injectable } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { TROUBLE_AFTER_FAILURES } from './drain-retry';

const STALENESS_CACHE_MS = 5000;

/** Drain metrics. Nothing is labelled by portal: thousands of portals must not multiply series. */
@Injectable()
export class DrainMetrics {
  readonly drains: Counter<'outcome'>;
  readonly events: Counter<'delivery_mode'>;
  readonly pages: Counter;
  readonly recoveredBatches: Counter;
  readonly possibleLosses: Counter<'reason'>;
  readonly duration: Histogram<'outcome'>;
  /** Per event: from its last write in Bitrix24 (TIMESTAMP_X) to its commit here. */
  readonly eventLag: Histogram;
  private staleness: { value: Promise<number>; readAt: number } | undefined;

  constructor(
    metrics: MetricsRegistry,
    private readonly dataSource: DataSource,
  ) {
    this.drains = metrics.counter(
      'offline_queue_drains_total',
      'Offline queue drain passes, by outcome (drained, deferred, busy, portal_not_active, failed)',
      ['outcome'],
    );
    this.events = metrics.counter(
      'offline_queue_drained_events_total',
      'Offline queue rows taken from Bitrix24 and committed, by delivery mode',
      ['delivery_mode'],
    );
    this.pages = metrics.counter(
      'offline_queue_drained_pages_total',
      'event.offline.get pages that returned rows and were committed',
    );
    this.recoveredBatches = metrics.counter(
      'offline_queue_recovered_batches_total',
      'Reserved batches resumed or adopted after a crash or a failed pass',
    );
    this.possibleLosses = metrics.counter(
      'offline_queue_possible_losses_total',
      'clear=1 reads (at-most-once portals) whose events may be lost, by reason: answer_lost (the read may have run, its answer never came) or commit_failed (rows read but not stored)',
      ['reason'],
    );
    this.duration = metrics.histogram(
      'offline_queue_drain_duration_seconds',
      'Duration of one drain pass, by outcome',
      ['outcome'],
      [0.05, 0.25, 1, 5, 15, 60, 300],
    );
    this.eventLag = metrics.histogram(
      'offline_queue_event_lag_seconds',
      'Time from an offline event (its TIMESTAMP_X) to its commit in the inbox',
      [],
      [0.5, 1, 2, 5, 15, 60, 300, 1800, 7200],
    );
    const inTrouble = (): Promise<number> => this.portalsInTrouble();
    metrics.gauge(
      'offline_queue_portals_in_trouble',
      `Portals whose last ${TROUBLE_AFTER_FAILURES} or more drain passes in a row failed (all replicas)`,
      [],
      async function () {
        this.set(await inTrouble());
      },
    );
    const read = (): Promise<number> => this.stalestPortalAge();
    metrics.gauge(
      'offline_queue_stalest_portal_seconds',
      'Seconds since the active portal drained longest ago last finished a drain',
      [],
      async function () {
        this.set(await read());
      },
    );
  }

  private async portalsInTrouble(): Promise<number> {
    const [row]: { count: number }[] = await this.dataSource.query(
      `SELECT count(*)::int AS count FROM offline_queue_states WHERE consecutive_failures >= $1`,
      [TROUBLE_AFTER_FAILURES],
    );
    return row?.count ?? 0;
  }

  private stalestPortalAge(): Promise<number> {
    if (this.staleness && Date.now() - this.staleness.readAt < STALENESS_CACHE_MS) {
      return this.staleness.value;
    }
    const value = this.dataSource
      .query(
        `SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(COALESCE(s.last_drain_finished_at, p.installed_at, p.created_at))), 0)::float8 AS age
         FROM portals p LEFT JOIN offline_queue_states s ON s.member_id = p.member_id
         WHERE p.status = 'active'`,
      )
      .then((rows: { age: number }[]) => rows[0]?.age ?? 0);
    this.staleness = { value, readAt: Date.now() };
    value.catch(() => (this.staleness = undefined));
    return value;
  }
}
