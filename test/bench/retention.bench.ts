/**
 * Retention against the drain: a day's worth of old rows (BENCH_RETENTION_EVENTS stored events,
 * default 1,000,000, over 10,000 portals, with their attempts and drain batches, all past their
 * windows) is inserted set-based, then a fleet drain (BENCH_RETENTION_DRAIN_PORTALS portals × 100
 * events a round, 16 portals at a time, against the emulator) runs round after round, rounds
 * without and with retention alternating, until retention (runs back to back while on) has retired
 * the whole day. Reports both rates and the drop (target ≤ 10%), rows retired per second,
 * retention's longest batch and the longest lock wait seen by any other backend (the drain's).
 */
import { Client } from 'pg';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { startEmulator } from '../../src/emulator';
import { DrainService } from '../../src/offline-queue/drain.service';
import { RetentionService, type RetentionReport } from '../../src/retention/retention.service';
import { installPortalDirectly } from '../support/portal-fixtures';
import { startTestApp, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';
import {
  createBenchDatabase,
  forEachLimited,
  machineDescription,
  percentile,
} from './bench-environment';

const DAY_EVENTS = Number(process.env.BENCH_RETENTION_EVENTS ?? 1_000_000);
const DAY_PORTALS = 10_000;
/** Offline rows per drain batch in the day's data (a portal's changes come a few at a time). */
const EVENTS_PER_BATCH = 10;
const DRAIN_PORTALS = Number(process.env.BENCH_RETENTION_DRAIN_PORTALS ?? 200);
const EVENTS_PER_DRAIN_PORTAL = 100;
const DRAIN_CONCURRENCY = 16;
/** Retention runs this long at most, so it can be switched off between rounds. */
const RETENTION_RUN_MS = 1000;
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
  /** Which rounds the waits seen now count for. */
  mode: RoundMode = 'without';
  readonly longest = {
    without: { drain: 0, retention: 0 },
    with: { drain: 0, retention: 0 },
  };

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
            WHERE NOT l.granted AND l.waitstart IS NOT NULL
              AND l.pid IN (SELECT pid FROM pg_stat_activity
                             WHERE datname = current_database() AND pid <> pg_backend_pid())
            GROUP BY 1`,
        );
        const longest = this.longest[this.mode];
        for (const row of rows) {
          if (row.retention) longest.retention = Math.max(longest.retention, row.ms);
          else longest.drain = Math.max(longest.drain, row.ms);
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

type RoundMode = 'without' | 'with';

/**
 * Retention's runs back to back, in short runs (RETENTION_RUN_MS each) so that it can be switched
 * off between drain rounds; the totals add up every run's report.
 */
class RetentionDriver {
  private active = false;
  private loop: Promise<void> | undefined;
  private activeSince = 0;
  done = false;
  runs = 0;
  seconds = 0;
  readonly totals: RetentionReport = {
    ran: true,
    storedEvents: 0,
    drainBatches: 0,
    longestStatementMs: 0,
  };

  constructor(private readonly retention: RetentionService) {}

  start(): void {
    this.active = true;
    this.activeSince = performance.now();
    this.loop = (async () => {
      while (this.active && !this.done) {
        const report = await this.retention.runOnce(new Date(), RETENTION_RUN_MS);
        this.runs += 1;
        this.totals.storedEvents += report.storedEvents;
        this.totals.drainBatches += report.drainBatches;
        this.totals.longestStatementMs = Math.max(
          this.totals.longestStatementMs,
          report.longestStatementMs,
        );
        if (report.storedEvents === 0 && report.drainBatches === 0) this.done = true;
      }
    })();
  }

  /** Switches it off: returns once its current run has ended. */
  async stop(): Promise<void> {
    this.active = false;
    await this.loop;
    this.seconds += (performance.now() - this.activeSince) / 1000;
  }
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
    /**
     * One round: 100 events queued on every drain portal, then all drained, 16 at a time; with
     * retention on from the first drain to the last.
     */
    const round = async (
      driver?: RetentionDriver,
    ): Promise<{ events: number; seconds: number }> => {
      await forEachLimited(memberIds, 32, async (memberId) => {
        await emulator.control.enqueueOfflineEvents(memberId, {
          count: EVENTS_PER_DRAIN_PORTAL,
          event: 'ONCRMDEALUPDATE',
          notify: false,
        });
      });
      let events = 0;
      const drainAll = async (): Promise<number> => {
        const startedAt = performance.now();
        await forEachLimited(memberIds, DRAIN_CONCURRENCY, async (memberId) => {
          const report = await drain.drainPortal(memberId);
          if (report.outcome !== 'drained') {
            throw new Error(`drain ${report.outcome}: ${report.error}`);
          }
          events += report.events;
        });
        return (performance.now() - startedAt) / 1000;
      };
      driver?.start();
      let seconds: number;
      try {
        seconds = await drainAll();
      } finally {
        // After the drain's time is taken: waiting for retention's run to end is not the drain's.
        await driver?.stop();
      }
      stored += events;
      return { events, seconds };
    };

    // A warm-up round: each portal's first drain (lease rows, the first adoption check).
    await round();

    // Rounds without and with retention alternate in pairs (without-with, then with-without, …),
    // so the load of a shared machine, which drifts by more than the effect, weighs on both alike.
    // A pair counts only when retention was busy all through its round.
    const driver = new RetentionDriver(app.app.get(RetentionService));
    const sampler = new LockWaitSampler(samplerSql);
    const sums = { without: { events: 0, seconds: 0 }, with: { events: 0, seconds: 0 } };
    const pairDrops: number[] = [];
    let pairs = 0;
    sampler.start();
    try {
      for (let pair = 0; !driver.done; pair += 1) {
        const order: RoundMode[] = pair % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
        const rates: Partial<Record<RoundMode, { events: number; seconds: number }>> = {};
        for (const mode of order) {
          sampler.mode = mode;
          rates[mode] = await round(mode === 'with' ? driver : undefined);
        }
        if (driver.done) break;
        pairs += 1;
        for (const mode of order) {
          sums[mode].events += rates[mode]!.events;
          sums[mode].seconds += rates[mode]!.seconds;
        }
        const rate = (mode: RoundMode): number => rates[mode]!.events / rates[mode]!.seconds;
        pairDrops.push(1 - rate('with') / rate('without'));
        console.log(
          `pair ${pairs}: without ${rate('without').toFixed(0)} events/s, with ${rate('with').toFixed(0)} events/s (${(pairDrops[pairDrops.length - 1] * 100).toFixed(1)}%)`,
        );
      }
    } finally {
      await sampler.stop();
    }

    const left = await dayCounts(sql);
    const retired = {
      events: seeded.events - left.events,
      attempts: seeded.attempts - left.attempts,
      batches: seeded.batches - left.batches,
    };
    const retiredRows = retired.events + retired.attempts + retired.batches;
    const { rows: drained } = await sql.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM stored_events WHERE member_id NOT LIKE 'day-%'`,
    );

    const rate = (mode: RoundMode): number => sums[mode].events / sums[mode].seconds;
    const drop = 1 - rate('with') / rate('without');
    const sortedDrops = [...pairDrops].sort((x, y) => x - y);
    console.log(
      `drain: ${DRAIN_PORTALS} portals × ${EVENTS_PER_DRAIN_PORTAL} events a round, ${DRAIN_CONCURRENCY} at a time; ${pairs} pairs of rounds`,
    );
    console.log(
      `without retention: ${sums.without.events} events in ${sums.without.seconds.toFixed(1)} s of draining = ${rate('without').toFixed(0)} events/s; longest lock wait of the drain ${sampler.longest.without.drain.toFixed(0)} ms`,
    );
    console.log(
      `while retention retires: ${sums.with.events} events in ${sums.with.seconds.toFixed(1)} s of draining = ${rate('with').toFixed(0)} events/s; longest lock wait of the drain ${sampler.longest.with.drain.toFixed(0)} ms`,
    );
    console.log(
      `drop: ${(drop * 100).toFixed(1)}% (target ≤ 10%); per pair median ${(percentile(sortedDrops, 50) * 100).toFixed(1)}%, from ${(sortedDrops[0] * 100).toFixed(1)}% to ${(sortedDrops[sortedDrops.length - 1] * 100).toFixed(1)}%`,
    );
    console.log(
      `retention: ${driver.runs} runs of at most ${RETENTION_RUN_MS} ms, busy ${driver.seconds.toFixed(1)} s in all; retired ${retired.events} events, ${retired.attempts} attempts, ${retired.batches} drain batches = ${(retiredRows / driver.seconds).toFixed(0)} rows/s (${(retired.events / driver.seconds).toFixed(0)} events/s); longest batch (DELETE to COMMIT) ${driver.totals.longestStatementMs} ms; its own longest lock wait ${sampler.longest.with.retention.toFixed(0)} ms`,
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
