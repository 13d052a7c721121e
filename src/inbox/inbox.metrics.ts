import { Injectable } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsRegistry } from '../metrics/metrics.registry';

/** Scrapes read the backlog from Postgres at most this often (every replica reports the same table). */
const BACKLOG_CACHE_MS = 5000;

interface Backlog {
  byStatus: Record<'pending' | 'failed' | 'dead' | 'unhandled', number>;
  oldestPendingAgeSeconds: number;
}

/** Inbox metrics; the backlog gauges are read from the shared table when Prometheus scrapes. */
@Injectable()
export class InboxMetrics {
  readonly handlerRuns: Counter<'outcome' | 'trigger'>;
  readonly handlerDuration: Histogram<'outcome'>;
  private backlog: { value: Promise<Backlog>; readAt: number } | undefined;

  constructor(
    metrics: MetricsRegistry,
    private readonly dataSource: DataSource,
  ) {
    this.handlerRuns = metrics.counter(
      'inbox_handler_runs_total',
      'Handler runs of stored events, by outcome (processed, failed, dead, unhandled) and trigger',
      ['outcome', 'trigger'],
    );
    this.handlerDuration = metrics.histogram(
      'inbox_handler_run_duration_seconds',
      'Time to run all handlers of one stored event',
      ['outcome'],
      [0.005, 0.025, 0.1, 0.5, 2, 10, 60],
    );
    const read = (): Promise<Backlog> => this.readBacklog();
    metrics.gauge(
      'inbox_events',
      'Stored events not yet handled successfully, by status (pending, failed, dead, unhandled)',
      ['status'],
      async function () {
        const { byStatus } = await read();
        for (const [status, count] of Object.entries(byStatus)) this.set({ status }, count);
      },
    );
    metrics.gauge(
      'inbox_oldest_pending_age_seconds',
      'Age of the oldest stored event still waiting for its handlers (pending or failed)',
      [],
      async function () {
        this.set((await read()).oldestPendingAgeSeconds);
      },
    );
  }

  private readBacklog(): Promise<Backlog> {
    if (this.backlog && Date.now() - this.backlog.readAt < BACKLOG_CACHE_MS) {
      return this.backlog.value;
    }
    const value = this.queryBacklog();
    this.backlog = { value, readAt: Date.now() };
    value.catch(() => (this.backlog = undefined));
    return value;
  }

  private async queryBacklog(): Promise<Backlog> {
    const counts: { status: 'pending' | 'failed' | 'dead' | 'unhandled'; count: string }[] =
      await this.dataSource.query(
        `SELECT status, count(*) AS count FROM stored_events
         WHERE status IN ('pending','failed','dead','unhandled') GROUP BY status`,
      );
    const [oldest]: { age: number | null }[] = await this.dataSource.query(
      `SELECT EXTRACT(EPOCH FROM now() - min(received_at))::float8 AS age FROM stored_events
       WHERE status IN ('pending','failed')`,
    );
    const byStatus = { pending: 0, failed: 0, dead: 0, unhandled: 0 };
    for (const row of counts) byStatus[row.status] = Number(row.count);
    return { byStatus, oldestPendingAgeSeconds: oldest?.age ?? 0 };
  }
}
