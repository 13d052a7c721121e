import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { EVENT_STATUSES } from '../../inbox/stored-event.entity';
import { PORTAL_STATUSES } from '../../portals/portal-status';
import {
  DrainStateStatsDto,
  DrainThroughputDto,
  OldestPendingEventDto,
  PortalBacklogDto,
  StatsDto,
  StatsQueryDto,
} from './admin-stats.dto';

const MINUTE_MS = 60_000;

function countsByKey<K extends string>(
  keys: readonly K[],
  rows: { key: string; count: number }[],
): Record<K, number> {
  const counts = Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
  for (const row of rows) {
    if (row.key in counts) counts[row.key as K] = row.count;
  }
  return counts;
}

const sum = (counts: Record<string, number>): number =>
  Object.values(counts).reduce((total, count) => total + count, 0);

/**
 * Service-wide figures for the operator. Every query is bounded: aggregates over indexed
 * columns, the per-portal list capped by `top`, the throughput window by `minutes`.
 */
@Injectable()
export class AdminStatsQueries {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async stats(query: StatsQueryDto): Promise<StatsDto> {
    const [
      eventCounts,
      blockedObjects,
      portalCounts,
      oldestPending,
      topPortals,
      throughput,
      drains,
      clock,
    ] = await Promise.all([
      this.dataSource.query<{ key: string; count: number }[]>(
        `SELECT "status" AS "key", count(*)::int AS "count" FROM "stored_events" GROUP BY "status"`,
      ),
      // Dead rows with an ordering key are in the partial index ix_stored_events_ordering.
      this.dataSource.query<{ count: number }[]>(
        `SELECT count(*)::int AS "count" FROM (
             SELECT DISTINCT "member_id", "ordering_key" FROM "stored_events"
              WHERE "status" = 'dead' AND "ordering_key" IS NOT NULL) AS "held"`,
      ),
      this.dataSource.query<{ key: string; count: number }[]>(
        `SELECT "status" AS "key", count(*)::int AS "count" FROM "portals" GROUP BY "status"`,
      ),
      this.oldestPending(),
      this.topPortals(query.top),
      this.dataSource.query<{ minute: Date; events: number }[]>(
        `SELECT date_trunc('minute', "received_at") AS "minute", count(*)::int AS "events"
             FROM "stored_events"
            WHERE "source" = 'offline'
              AND "received_at" >= date_trunc('minute', now()) - make_interval(mins => $1)
            GROUP BY 1`,
        [query.minutes - 1],
      ),
      this.drains(),
      this.dataSource.query<{ now: Date; currentMinute: Date }[]>(
        `SELECT now() AS "now", date_trunc('minute', now()) AS "currentMinute"`,
      ),
    ]);
    const { now, currentMinute } = clock[0];
    const byStatus = countsByKey(EVENT_STATUSES, eventCounts);
    const portalsByStatus = countsByKey(PORTAL_STATUSES, portalCounts);
    return {
      generatedAt: now.toISOString(),
      events: {
        total: sum(byStatus),
        byStatus,
        dead: byStatus.dead,
        blockedObjects: blockedObjects[0].count,
        oldestPending: oldestPending && {
          ...oldestPending,
          ageSeconds: Math.max(
            0,
            Math.round((now.getTime() - new Date(oldestPending.receivedAt).getTime()) / 1000),
          ),
        },
      },
      portals: {
        total: sum(portalsByStatus),
        byStatus: portalsByStatus,
      },
      topPortalsByPending: topPortals,
      drainThroughput: this.throughputOf(query.minutes, throughput, currentMinute, now),
      drains,
    };
  }

  private async oldestPending(): Promise<Omit<OldestPendingEventDto, 'ageSeconds'> | null> {
    const rows = await this.dataSource.query<
      { id: string; memberId: string; eventName: string; receivedAt: Date }[]
    >(
      `SELECT "id", "member_id" AS "memberId", "event_name" AS "eventName",
              "received_at" AS "receivedAt"
         FROM "stored_events"
        WHERE "status" IN ('pending', 'failed')
        ORDER BY "id"
        LIMIT 1`,
    );
    if (rows.length === 0) return null;
    const [row] = rows;
    return { ...row, id: String(row.id), receivedAt: row.receivedAt.toISOString() };
  }

  private topPortals(top: number): Promise<PortalBacklogDto[]> {
    return this.dataSource.query<PortalBacklogDto[]>(
      `SELECT "member_id" AS "memberId",
              count(*) FILTER (WHERE "status" = 'pending')::int AS "pending",
              count(*) FILTER (WHERE "status" = 'failed')::int AS "failed",
              count(*) FILTER (WHERE "status" = 'dead')::int AS "dead"
         FROM "stored_events"
        WHERE "status" IN ('pending', 'failed', 'dead')
        GROUP BY "member_id"
        ORDER BY "pending" DESC, "failed" DESC, "dead" DESC, "member_id"
        LIMIT $1`,
      [top],
    );
  }

  private async drains(): Promise<DrainStateStatsDto> {
    const [[states], [batches]] = await Promise.all([
      this.dataSource.query<Omit<DrainStateStatsDto, 'unclearedBatches'>[]>(
        `SELECT count(*) FILTER (WHERE "drain_requested_at" IS NOT NULL
                  AND ("last_drain_started_at" IS NULL
                       OR "last_drain_started_at" < "drain_requested_at"))::int AS "waiting",
                count(*) FILTER (WHERE "lease_holder" IS NOT NULL
                  AND "lease_expires_at" > now())::int AS "running",
                count(*) FILTER (WHERE "last_drain_outcome" = 'failed')::int AS "lastFailed"
           FROM "offline_queue_states"`,
      ),
      this.dataSource.query<{ count: number }[]>(
        `SELECT count(*)::int AS "count" FROM "drain_batches" WHERE "state" = 'committed'`,
      ),
    ]);
    return { ...states, unclearedBatches: batches.count };
  }

  /** One bucket per minute of the window, zero-filled, the current (partial) minute last. */
  private throughputOf(
    minutes: number,
    rows: { minute: Date; events: number }[],
    currentMinute: Date,
    now: Date,
  ): DrainThroughputDto {
    const eventsByMinute = new Map(rows.map((row) => [row.minute.getTime(), row.events]));
    const windowStart = currentMinute.getTime() - (minutes - 1) * MINUTE_MS;
    const perMinute = Array.from({ length: minutes }, (_, index) => {
      const start = windowStart + index * MINUTE_MS;
      return { minute: new Date(start).toISOString(), events: eventsByMinute.get(start) ?? 0 };
    });
    const events = perMinute.reduce((total, bucket) => total + bucket.events, 0);
    const elapsedSeconds = Math.max(1, (now.getTime() - windowStart) / 1000);
    return {
      minutes,
      events,
      eventsPerSecond: Math.round((events / elapsedSeconds) * 100) / 100,
      perMinute,
    };
  }
}
