/**
 * One portal at Bitrix24's real limits (2 requests/s, burst 50, DRAIN_PAGE_SIZE 50): how close does
 * a drain get to the rate-limit bound RPS × DRAIN_PAGE_SIZE once the burst allowance is spent?
 * Each page should cost one request (clear of page N + get of page N+1 in one batch).
 */
import { DrainService } from '../../src/offline-queue/drain.service';
import { machineDescription } from './bench-environment';
import { startOnePortalDrainBench } from './one-portal-drain';

const RPS = 2;
const BURST = 50;
const PAGE_SIZE = 50;
const EVENTS = Number(process.env.BENCH_DRAIN_EVENTS ?? 8000);
/** Pages committed before this one may still ride on the burst allowance. */
const STEADY_FROM_PAGE = BURST + 10;

async function main(): Promise<void> {
  const { database, emulator, app, portal, close } = await startOnePortalDrainBench({
    rps: RPS,
    burst: BURST,
    pageSize: PAGE_SIZE,
    events: EVENTS,
  });
  try {
    const report = await app.app.get(DrainService).drainPortal(portal.memberId);
    const batches = await database.query<{ committed_at: Date; event_count: number }>(
      `SELECT committed_at, event_count FROM drain_batches WHERE member_id = $1 ORDER BY committed_at`,
      [portal.memberId],
    );
    const stats = await emulator.control.stats(portal.memberId);
    const steady = batches.slice(STEADY_FROM_PAGE);
    const steadyEvents = steady.slice(1).reduce((sum, batch) => sum + batch.event_count, 0);
    const steadySeconds =
      (steady[steady.length - 1].committed_at.getTime() - steady[0].committed_at.getTime()) / 1000;
    const steadyRate = steadyEvents / steadySeconds;
    const bound = RPS * PAGE_SIZE;

    console.log(`machine: ${machineDescription()}`);
    console.log(`queue: ${EVENTS} events, limits ${RPS} rps / burst ${BURST}, page ${PAGE_SIZE}`);
    console.log(
      `drain: outcome ${report.outcome}, ${report.events} events, ${report.pages} pages in ${(report.durationMs / 1000).toFixed(1)} s (${(report.events / (report.durationMs / 1000)).toFixed(1)} events/s overall, burst included)`,
    );
    console.log(
      `steady state (pages ${STEADY_FROM_PAGE + 1}..${batches.length}): ${steadyRate.toFixed(1)} events/s; bound ${bound} events/s; ratio ${(steadyRate / bound).toFixed(3)} (target ≥ 0.9)`,
    );
    console.log(
      `emulator: ${stats.httpRequests} HTTP requests, ${stats.rateLimitRefusals} QUERY_LIMIT_EXCEEDED, queue left ${stats.queue.total} (reserved ${stats.queue.reserved})`,
    );
    console.log(`rest calls: ${JSON.stringify(stats.restCalls)}`);
  } finally {
    await close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
