import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { MetricsRegistry } from '../metrics/metrics.registry';

/** A refresh token this close to its end needs the keep-alive (or a re-install) soon. */
export const REFRESH_EXPIRING_WITHIN_DAYS = 3;

/** Fleet-wide gauges about portals' token chains, read from Postgres at scrape time (all replicas). */
@Injectable()
export class PortalMetrics {
  constructor(dataSource: DataSource, metrics: MetricsRegistry) {
    const count = async (): Promise<number> => {
      const [row]: { count: number }[] = await dataSource.query(
        `SELECT count(*)::int AS count
           FROM portal_tokens t JOIN portals p ON p.member_id = t.member_id
          WHERE p.status = 'active' AND t.refresh_token IS NOT NULL
            AND t.refresh_expires_at < now() + make_interval(days => $1)`,
        [REFRESH_EXPIRING_WITHIN_DAYS],
      );
      return row?.count ?? 0;
    };
    metrics.gauge(
      'portal_refresh_tokens_expiring',
      `Active portals whose refresh token ends within ${REFRESH_EXPIRING_WITHIN_DAYS} days (all replicas)`,
      [],
      async function () {
        this.set(await count());
      },
    );
  }
}
