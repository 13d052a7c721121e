/**
 * Many portals, one instance: N portals × 100 queued events each, announced by ONOFFLINEEVENT,
 * drained by one server process (a real child process, measured from outside). Reports total
 * events/s, p99 time from enqueue to stored, and the server's peak RSS; run at 100 and 1,000
 * portals to show that the cost per extra portal is flat.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { startEmulator } from '../../src/emulator';
import { startAppProcess } from '../support/app-process';
import { installPortalDirectly } from '../support/portal-fixtures';
import { freePort, startTestApp, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';
import {
  createBenchDatabase,
  forEachLimited,
  machineDescription,
  percentile,
  waitUntil,
} from './bench-environment';

const EVENTS_PER_PORTAL = 100;
const SIZES = (process.env.BENCH_FLEET_PORTALS ?? '100,1000').split(',').map(Number);
/** BENCH_RATE_LIMIT_STORE=memory runs the same fleet on the in-process buckets, for comparison. */
const STORE = process.env.BENCH_RATE_LIMIT_STORE
  ? { BITRIX24_RATE_LIMIT_STORE: process.env.BENCH_RATE_LIMIT_STORE }
  : {};

/** BENCH_SERVER_NODE_ARGS="--heapsnapshot-signal=SIGUSR2 …" passes flags to the server process. */
const NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * BENCH_FLEET_HEAP_SNAPSHOT=1: once everything is stored, the server writes a heap snapshot
 * (Heap.*.heapsnapshot in the working directory): what it still holds after the fleet, per-portal
 * caches included. Taken after the peak RSS is read, since writing it costs memory of its own.
 */
const HEAP_SNAPSHOT = process.env.BENCH_FLEET_HEAP_SNAPSHOT === '1';

async function takeHeapSnapshot(pid: number): Promise<void> {
  const before = new Set(readdirSync('.'));
  let lastSize = -1;
  process.kill(pid, 'SIGUSR2');
  await waitUntil(
    'the heap snapshot',
    async () => {
      const written = readdirSync('.').find(
        (name) => !before.has(name) && name.endsWith('.heapsnapshot'),
      );
      // The file appears at once and grows; it is complete when its size stops changing.
      if (!written) return false;
      const size = statSync(written).size;
      const done = size > 0 && size === lastSize;
      lastSize = size;
      if (done) console.log(`heap snapshot: ${written}`);
      return done;
    },
    120_000,
    1000,
  );
}

function memoryKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : NaN;
}

interface FleetResult {
  portals: number;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  idleRssMiB: number;
  peakRssMiB: number;
}

async function runFleet(portals: number): Promise<FleetResult> {
  const database = await createBenchDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
  });
  const port = await freePort();
  const handlerUrl = `http://127.0.0.1:${port}/bitrix24/events`;
  try {
    // Arrange with an in-process app (install + bind), then close it: only the child drains.
    const arranger = await startTestApp({
      databaseUrl: database.url,
      env: { LOG_LEVEL: 'warn', BITRIX24_OAUTH_URL: emulator.url },
    });
    const memberIds: string[] = [];
    await forEachLimited(
      Array.from({ length: portals }, (_, i) => i),
      16,
      async () => {
        const portal = await installPortalDirectly(emulator, arranger);
        const client = arranger.app.get(Bitrix24Client).operationsFor(portal.memberId);
        await client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
        await client.eventBind({
          event: 'ONOFFLINEEVENT',
          handler: handlerUrl,
          options: { minTimeout: 1 },
        });
        memberIds.push(portal.memberId);
      },
    );
    await arranger.close();

    const server = await startAppProcess({
      databaseUrl: database.url,
      port,
      built: true,
      nodeArgs: HEAP_SNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', ...NODE_ARGS] : NODE_ARGS,
      env: {
        LOG_LEVEL: 'warn',
        BITRIX24_OAUTH_URL: emulator.url,
        POLL_INTERVAL_SECONDS: '0',
        ...STORE,
      },
    });
    try {
      const idleRss = memoryKiB(server.pid, 'VmRSS');
      const enqueuedAt = new Map<string, number>();
      const startedAt = Date.now();
      await forEachLimited(memberIds, 32, async (memberId) => {
        enqueuedAt.set(memberId, Date.now());
        await emulator.control.enqueueOfflineEvents(memberId, {
          count: EVENTS_PER_PORTAL,
          event: 'ONCRMDEALUPDATE',
        });
      });
      const total = portals * EVENTS_PER_PORTAL;
      await waitUntil(
        `${total} stored events`,
        async () => {
          const [{ count }] = await database.query<{ count: string }>(
            `SELECT count(*) FROM stored_events`,
          );
          return Number(count) >= total;
        },
        15 * 60_000,
        200,
      );
      const peakRss = memoryKiB(server.pid, 'VmHWM');
      if (HEAP_SNAPSHOT) await takeHeapSnapshot(server.pid);
      const rows = await database.query<{ member_id: string; received_ms: string }>(
        `SELECT member_id, (extract(epoch FROM received_at) * 1000)::bigint AS received_ms FROM stored_events`,
      );
      const latencies = rows
        .map((row) => Number(row.received_ms) - enqueuedAt.get(row.member_id)!)
        .sort((a, b) => a - b);
      // A loop, not Math.max(...rows): a million arguments overflow the stack.
      let lastStored = -Infinity;
      for (const row of rows) lastStored = Math.max(lastStored, Number(row.received_ms));
      const seconds = (lastStored - startedAt) / 1000;
      return {
        portals,
        events: rows.length,
        seconds,
        eventsPerSecond: rows.length / seconds,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        idleRssMiB: idleRss / 1024,
        peakRssMiB: peakRss / 1024,
      };
    } finally {
      await server.terminate();
    }
  } finally {
    await emulator.close();
    await database.drop();
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${machineDescription()} (emulator, Postgres and the server share it)`);
  const results: FleetResult[] = [];
  for (const portals of SIZES) {
    const result = await runFleet(portals);
    results.push(result);
    console.log(
      `${result.portals} portals × ${EVENTS_PER_PORTAL} events: ${result.events} stored in ${result.seconds.toFixed(1)} s = ${result.eventsPerSecond.toFixed(0)} events/s; time-to-stored p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms; server RSS idle ${result.idleRssMiB.toFixed(0)} MiB, peak ${result.peakRssMiB.toFixed(0)} MiB`,
    );
  }
  if (results.length > 1) {
    const [small, large] = [results[0], results[results.length - 1]];
    const perPortalSeconds = (r: FleetResult): number => (r.seconds * 1000) / r.portals;
    const perPortalRss = (r: FleetResult): number =>
      ((r.peakRssMiB - r.idleRssMiB) * 1024) / r.portals;
    console.log(
      `cost per portal: ${perPortalSeconds(small).toFixed(1)} ms → ${perPortalSeconds(large).toFixed(1)} ms of drain time; ${perPortalRss(small).toFixed(0)} KiB → ${perPortalRss(large).toFixed(0)} KiB of peak RSS growth (${small.portals} → ${large.portals} portals)`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
