/**
 * One portal at Bitrix24's real limits (2 requests/s, burst 50, DRAIN_PAGE_SIZE 50) behind a flaky
 * Bitrix24: 30% of its REST requests fail (10% 500s, 10% answers lost after the request ran, 10% a
 * gateway's 502/504 HTML page). Drains run as in production (notification, then the scheduler's
 * retries). How close does the steady state get to the fault-free bound RPS × DRAIN_PAGE_SIZE, and
 * is every event stored exactly once with nothing left reserved?
 */
import { DrainScheduler } from '../../src/offline-queue/drain-scheduler.service';
import { machineDescription, waitUntil } from './bench-environment';
import { startOnePortalDrainBench } from './one-portal-drain';

const RPS = 2;
const BURST = 50;
const PAGE_SIZE = 50;
const EVENTS = Number(process.env.BENCH_FLAKY_EVENTS ?? 6000);
/**
 * The generic request timeout (BITRIX24_REQUEST_TIMEOUT_MS); the product's default (30 s) unless
 * BENCH_FLAKY_TIMEOUT_MS says otherwise. Offline-queue calls wait what the portal's own answer
 * times call for, within it.
 */
const REQUEST_TIMEOUT_MS = Number(process.env.BENCH_FLAKY_TIMEOUT_MS ?? 30_000);
/** Pages committed before this one may still ride on the burst allowance. */
const STEADY_FROM_PAGE = BURST;

async function main(): Promise<void> {
  const { database, emulator, app, portal, close } = await startOnePortalDrainBench({
    rps: RPS,
    burst: BURST,
    pageSize: PAGE_SIZE,
    events: EVENTS,
    env: { BITRIX24_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
  });
  try {
    await emulator.control.setFaults(portal.memberId, {
      errorRate: 0.1,
      timeoutRate: 0.1,
      gatewayTimeoutRate: 0.1,
    });

    const startedAt = Date.now();
    app.app.get(DrainScheduler).request(portal.memberId);
    const stored = async (): Promise<number> =>
      Number(
        (
          await database.query<{ count: string }>(
            `SELECT count(*) FROM stored_events WHERE member_id = $1`,
            [portal.memberId],
          )
        )[0].count,
      );
    await waitUntil('every event stored', async () => (await stored()) >= EVENTS, 30 * 60_000);
    const drainedSeconds = (Date.now() - startedAt) / 1000;
    const faultyStats = await emulator.control.stats(portal.memberId);
    await emulator.control.clearFaults(portal.memberId);
    app.app.get(DrainScheduler).request(portal.memberId);
    await waitUntil(
      "Bitrix24's queue empty",
      async () => {
        const { queue } = await emulator.control.stats(portal.memberId);
        return queue.total === 0 && queue.reserved === 0;
      },
      120_000,
    );

    const [counts] = await database.query<{ rows: string; distinct: string }>(
      `SELECT count(*) AS rows, count(DISTINCT queue_id) AS distinct FROM stored_events
        WHERE member_id = $1`,
      [portal.memberId],
    );
    const batches = await database.query<{ committed_at: Date; event_count: number }>(
      `SELECT committed_at, event_count FROM drain_batches WHERE member_id = $1
        ORDER BY committed_at`,
      [portal.memberId],
    );
    const steady = batches.slice(STEADY_FROM_PAGE);
    const steadyEvents = steady.slice(1).reduce((sum, batch) => sum + batch.event_count, 0);
    const steadySeconds =
      (steady[steady.length - 1].committed_at.getTime() - steady[0].committed_at.getTime()) / 1000;
    const steadyRate = steadyEvents / steadySeconds;
    const bound = RPS * PAGE_SIZE;
    const finalStats = await emulator.control.stats(portal.memberId);
    const rows = Number(counts.rows);
    const distinct = Number(counts.distinct);

    console.log(`machine: ${machineDescription()}`);
    console.log(
      `queue: ${EVENTS} events, limits ${RPS} rps / burst ${BURST}, page ${PAGE_SIZE}, faults 30% (10% 500, 10% lost answers, 10% 502/504 HTML), request timeout ${REQUEST_TIMEOUT_MS} ms`,
    );
    console.log(
      `drained in ${drainedSeconds.toFixed(1)} s (${(EVENTS / drainedSeconds).toFixed(1)} events/s overall, burst included); ${faultyStats.httpRequests} HTTP requests`,
    );
    console.log(
      `steady state (pages ${STEADY_FROM_PAGE + 1}..${batches.length}): ${steadyRate.toFixed(1)} events/s; fault-free bound ${bound} events/s; ratio ${(steadyRate / bound).toFixed(3)} (target ≥ 0.3)`,
    );
    console.log(
      `exactly once: ${rows} stored, ${distinct} distinct queue ids, lost ${EVENTS - distinct}, doubled ${rows - distinct}; left in Bitrix24 ${finalStats.queue.total} (reserved ${finalStats.queue.reserved})`,
    );
  } finally {
    await close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
