/**
 * Retention against the drain: a day's worth of old rows (BENCH_RETENTION_EVENTS stored events,
 * default 1,000,000, over 10,000 portals, with their attempts and drain batches, all past their
 * windows) is inserted set-based, then a fleet drain (BENCH_RETENTION_DRAIN_PORTALS portals × 100
 * events a round, 16 portals at a time, against the emulator) is measured without retention, while
 * retention retires the whole day (runs back to back, i.e. retention never idle), and without it
 * again. Reports both rates and the drop (target ≤ 10%), rows retired per second, retention's
 * longest batch and the longest lock wait seen by any other backend (the drain's).
 */
import { Client } from 'pg';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { startEmulator } from '../../src/emulator';
import { DrainService } from '../../src/offline-queue/drain.service';
import { RetentionService, type RetentionReport } from '../../src/retention/retention.service';
import { installPortalDirectly } from '../support/portal-fixtures';
import { startTestApp, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';
import { createBenchDatabase, forEachLimited, machineDescription } from './bench-environment';

const DAY_EVENTS = Number(process.env.BENCH_RETENTION_EVENTS ?? 1_000_000);
const DAY_PORTALS = 10_000;
/** Offline rows per drain batch in the day's data (a portal's changes come a few at a time). */
const EVENTS_PER_BATCH = 10;
const DRAIN_PORTALS = Number(process.env.BENCH_RETENTION_DRAIN_PORTALS ?? 200);
const EVENTS_PER_DRAIN_PORTAL = 100;
const DRAIN_CONCURRENCY = 16;
const BASELINE_ROUNDS = Number(process.env.BENCH_RETENTION_BASELINE_ROUNDS ?? 6);
/** Generous limits: the drain is bound by Postgres and the two cores, not by Bitrix24's bucket. */
const RATE_LIMIT = { rps: 100_000, burst: 100_000 };

/**
 * The day, received 32 days ago and processed 31 days ago (RETENTION_DAYS 30), its batches cleared
 * 36 days ago (past the 35-day ledger window), all in a single day's spread. Kept on purpose: one
 * event in 200 is dead, and one batch in 500 is still uncleared (its events must stay).
 */
const SEED = [
  `INSERT INTO drain_batches (member_id, process_id, state, event_count, committed_at, cleared_at)
   SELECT 'day-' || (b % ${DAY_PORTALS}), 'pid-' || b,
          CASE WHEN b % 500 = 0 THEN 'committed' ELSE 'cleared' END, ${EVENTS_PER_BATCH},
          t, CASE WHEN b % 500 = 0 THEN NULL ELSE t + interval '1 second' END
     FROM generate_series(0, $1::int / ${EVENTS_PER_BATCH} - 1) AS b,
          LATERAL (SELECT now() - interval '37 days'
                          + make_interval(secs => b * 86400.0 / ($1::int / ${EVENTS_PER_BATCH}))) AS x(t)`,
  // Event g belongs to batch g / EVENTS_PER_BATCH, so to that batch's portal.
  `INSERT INTO stored_events (member_id, source, queue_id, message_id, process_id, event_name,
      ordering_key, data, additional, bitrix_timestamp, received_at, status, attempts,
      next_attempt_at, processed_at)
   SELECT 'day-' || ((g / ${EVENTS_PER_BATCH}) % ${DAY_PORTALS}), 'offline', g, md5(g::text),
          'pid-' || (g / ${EVENTS_PER_BATCH}), 'ONCRMDEALUPDATE', 'crm:deal:' || (g % 50000),
          jsonb_build_object('FIELDS', jsonb_build_object('ID', (g % 50000)::text)),
          jsonb_build_object('user_id', '1'), t, t,
          CASE WHEN g % 200 = 0 THEN 'dead' ELSE 'processed' END,
          CASE WHEN g % 10 = 0 THEN 2 ELSE 1 END, NULL,
          CASE WHEN g % 200 = 0 THEN NULL ELSE t + interval '1 day' END
     FROM generate_series(0, $1::int - 1) AS g,
          LATERAL (SELECT now() - interval '32 days' + make_interval(secs => g * 86400.0 / $1::int)) AS x(t)`,
  // One attempt each; one event in ten failed once first.
  `INSERT INTO event_attempts (event_id, attempt, trigger, outcome, handlers, started_at, finished_at)
   SELECT e.id, a.n, 'automatic',
          CASE WHEN a.n < e.attempts THEN 'failed' WHEN e.status = 'dead' THEN 'dead' ELSE 'processed' END,
          ARRAY['DealSync.onDeal'],
          e.received_at + make_interval(secs => a.n * 10), e.received_at + make_interval(secs => a.n * 10 + 1)
     FROM stored_events e, generate_series(1, e.attempts) AS a(n)
    WHERE e.member_id LIKE 'day-%'`,
];

interface DayCounts {
  events: number;
  attempts: number;
  batches: number;
}

async function dayCounts(sql: Client): Promise<DayCounts> {
  const { rows } = await sql.query<{ events: number; attempts: number; batches: number }>(
    `SELECT (SELECT count(*) FROM stored_events WHERE member_id LIKE 'day-%')::int AS events,
            (SELECT count(*) FROM event_attempts a JOIN stored_events e ON e.id = a.event_id
              WHERE e.member_id LIKE 'day-%')::int AS attempts,
            (SELECT count(*) FROM drain_batches WHERE member_id LIKE 'day-%')::int AS batches`,
  );
  return rows[0];
}

/**
 * Samples every 20 ms how long each backend has waited for a heavyweight lock (pg_locks.waitstart):
 * the longest wait of retention's own backend (the holder of its advisory lock) and of every other
 * one, i.e. the drain's. A sampled wait is a lower bound of the real one, by up to 20 ms.
 */
class LockWaitSampler {
  private stopped = false;
  private loop: Promise<void> | undefined;
  others = 0;
  retention = 0;

  constructor(private readonly sql: Client) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const { rows } = await this.sql.query<{ retention: boolean; ms: number }>(
          `WITH k AS (SELECT hashtext('retention')::bigint AS key),
                holder AS (SELECT l.pid FROM pg_locks l, k
                            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                              AND l.classid::bigint = ((k.key >> 32) & 4294967295)
                              AND l.objid::bigint = (k.key & 4294967295))
           SELECT l.pid IN (SELECT pid FROM holder) AS retention,
                  max(extract(epoch FROM clock_timestamp() - l.waitstart) * 1000)::float8 AS ms
             FROM pg_locks l
            WHERE NOT l.granted AND l.waitstart IS NOT NULL AND l.pid <> pg_backend_pid()
            GROUP BY 1`,
        );
        for (const row of rows) {
          if (row.retention) this.retention = Math.max(this.retention, row.ms);
          else this.others = Math.max(this.others, row.ms);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

interface DrainPhase {
  rounds: number;
  events: number;
  seconds: number;
  rate: number;
  longestLockWaitMs: number;
  /** Retention's own longest wait (its batches give way after lock_timeout). */
  retentionLockWaitMs: number;
}

async function main(): Promise<void> {
  console.log(`machine: ${machineDescription()} (emulator, Postgres and the app share it)`);
  const database = await createBenchDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    rateLimit: RATE_LIMIT,
  });
  const app = await startTestApp({
    databaseUrl: database.url,
    env: {
      LOG_LEVEL: 'warn',
      BITRIX24_OAUTH_URL: emulator.url,
      BITRIX24_RATE_LIMIT_RPS: String(RATE_LIMIT.rps),
      BITRIX24_RATE_LIMIT_BURST: String(RATE_LIMIT.burst),
      RETENTION_DAYS: '30',
      // The benchmark runs retention itself; the scheduler's first run would come much later.
      RETENTION_INTERVAL_SECONDS: '86400',
      // The drain alone: stored events are not run by handlers.
      INBOX_CONCURRENCY: '0',
    },
  });
  const sql = new Client({ connectionString: database.url });
  const samplerSql = new Client({ connectionString: database.url });
  await sql.connect();
  await samplerSql.connect();
  try {
    const memberIds: string[] = [];
    await forEachLimited(
      Array.from({ length: DRAIN_PORTALS }, (_, i) => i),
      16,
      async () => {
        const portal = await installPortalDirectly(emulator, app);
        await app.app
          .get(Bitrix24Client)
          .operationsFor(portal.memberId)
          .eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
        memberIds.push(portal.memberId);
      },
    );

    const seedStarted = performance.now();
    for (const statement of SEED) {
      await sql.query(statement, statement.includes('$1') ? [DAY_EVENTS] : []);
    }
    await sql.query('VACUUM ANALYZE stored_events, event_attempts, drain_batches');
    const seeded = await dayCounts(sql);
    console.log(
      `day inserted: ${seeded.events} stored events over ${DAY_PORTALS} portals, ${seeded.attempts} attempts, ${seeded.batches} drain batches in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s (set-based, VACUUM ANALYZE included)`,
    );

    const { rows: keep } = await sql.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM stored_events e
        WHERE e.member_id LIKE 'day-%'
          AND (e.status = 'dead'
               OR EXISTS (SELECT 1 FROM drain_batches b
                           WHERE b.member_id = e.member_id AND b.process_id = e.process_id
                             AND b.state = 'committed'))`,
    );
    const expectedEvents = keep[0].count;

    const drain = app.app.get(DrainService);
    let stored = 0;
    /** One round: 100 events queued on every drain portal, then all drained, 16 at a time. */
    const round = async (): Promise<{ events: number; ms: number }> => {
      await forEachLimited(memberIds, 32, async (memberId) => {
        await emulator.control.enqueueOfflineEvents(memberId, {
          count: EVENTS_PER_DRAIN_PORTAL,
          event: 'ONCRMDEALUPDATE',
          notify: false,
        });
      });
      const startedAt = performance.now();
      let events = 0;
      await forEachLimited(memberIds, DRAIN_CONCURRENCY, async (memberId) => {
        const report = await drain.drainPortal(memberId);
        if (report.outcome !== 'drained')
          throw new Error(`drain ${report.outcome}: ${report.error}`);
        events += report.events;
      });
      stored += events;
      return { events, ms: performance.now() - startedAt };
    };
    const phase = async (until: () => boolean): Promise<DrainPhase> => {
      const sampler = new LockWaitSampler(samplerSql);
      sampler.start();
      let rounds = 0;
      let events = 0;
      let ms = 0;
      try {
        while (!until()) {
          const done = await round();
          rounds += 1;
          events += done.events;
          ms += done.ms;
        }
      } finally {
        await sampler.stop();
      }
      return {
        rounds,
        events,
        seconds: ms / 1000,
        rate: events / (ms / 1000),
        longestLockWaitMs: sampler.others,
        retentionLockWaitMs: sampler.retention,
      };
    };
    const rounds = (count: number): (() => boolean) => {
      let left = count;
      return () => left-- <= 0;
    };

    // One round to warm up (first drains of each portal: lease rows, adoption checks).
    await round();
    const before = await phase(rounds(BASELINE_ROUNDS));

    const retention = app.app.get(RetentionService);
    const totals: RetentionReport = {
      ran: true,
      storedEvents: 0,
      drainBatches: 0,
      longestStatementMs: 0,
    };
    let runs = 0;
    let retiring = true;
    const retentionStarted = performance.now();
    const retire = (async () => {
      try {
        for (;;) {
          const report = await retention.runOnce();
          runs += 1;
          totals.storedEvents += report.storedEvents;
          totals.drainBatches += report.drainBatches;
          totals.longestStatementMs = Math.max(
            totals.longestStatementMs,
            report.longestStatementMs,
          );
          if (report.storedEvents === 0 && report.drainBatches === 0) break;
        }
      } finally {
        retiring = false;
      }
    })();
    const during = await phase(() => !retiring);
    await retire;
    const retentionSeconds = (performance.now() - retentionStarted) / 1000;

    const after = await phase(rounds(BASELINE_ROUNDS));

    const left = await dayCounts(sql);
    const retiredRows =
      seeded.events -
      left.events +
      (seeded.attempts - left.attempts) +
      (seeded.batches - left.batches);
    const { rows: drained } = await sql.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM stored_events WHERE member_id NOT LIKE 'day-%'`,
    );

    const line = (name: string, p: DrainPhase): string =>
      `${name}: ${p.rounds} rounds, ${p.events} events in ${p.seconds.toFixed(1)} s of draining = ${p.rate.toFixed(0)} events/s; longest lock wait of the drain ${p.longestLockWaitMs.toFixed(0)} ms`;
    console.log(
      `drain: ${DRAIN_PORTALS} portals × ${EVENTS_PER_DRAIN_PORTAL} events a round, ${DRAIN_CONCURRENCY} at a time`,
    );
    console.log(line('without retention (before)', before));
    console.log(line('while retention retires the day', during));
    console.log(line('without retention (after)', after));
    const baseline = (before.events + after.events) / (before.seconds + after.seconds);
    const drop = 1 - during.rate / baseline;
    console.log(
      `drop: ${(drop * 100).toFixed(1)}% against both baselines (${baseline.toFixed(0)} events/s), ${((1 - during.rate / before.rate) * 100).toFixed(1)}% against the one before (target ≤ 10%)`,
    );
    console.log(
      `retention: ${runs} runs back to back in ${retentionSeconds.toFixed(1)} s; retired ${seeded.events - left.events} events, ${seeded.attempts - left.attempts} attempts, ${seeded.batches - left.batches} drain batches = ${(retiredRows / retentionSeconds).toFixed(0)} rows/s (${((seeded.events - left.events) / retentionSeconds).toFixed(0)} events/s); longest batch (DELETE to COMMIT) ${totals.longestStatementMs} ms; its own longest lock wait ${during.retentionLockWaitMs.toFixed(0)} ms`,
    );
    console.log(
      `kept: ${left.events} events (expected ${expectedEvents}: the dead ones and those of uncleared batches), ${left.batches} drain batches (the uncleared ones); ${drained[0].count} events drained, ${stored} reported by the drains`,
    );
    if (left.events !== expectedEvents) throw new Error('retention kept the wrong events');
    if (drained[0].count !== stored) throw new Error('the drain lost or doubled events');
  } finally {
    await sql.end();
    await samplerSql.end();
    await app.close();
    await emulator.close();
    await database.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
