/**
 * Many portals, one instance: N portals × 100 queued events each, announced by ONOFFLINEEVENT,
 * drained by one server process (the production build with `npm run start:prod`'s Node.js flags,
 * a real child process, measured from outside) whose inbox also runs every drained event (no
 * handler is registered, so each run is the inbox's own work: claim, record, next in line).
 * Reports total events/s, p50/p99 time from enqueue to stored, how long a portal waited for its
 * first stored event (fairness), whether the inbox kept up with the drain, and the server's idle
 * and peak RSS; run at 1,000 and 10,000 portals to show that the cost per extra portal is flat.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { startEmulator } from '../../src/emulator';
import { productionNodeOptions, startAppProcess } from '../support/app-process';
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

/** How long to wait, once every event is stored, for the inbox to have run them all. */
const INBOX_WAIT_MS = Number(process.env.BENCH_FLEET_INBOX_WAIT_S ?? 300) * 1000;

/** BENCH_SERVER_ENV="INBOX_CONCURRENCY=64 DRAIN_CONCURRENCY=32" sets the server's environment. */
const SERVER_ENV = Object.fromEntries(
  (process.env.BENCH_SERVER_ENV ?? '')
    .split(' ')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);

/**
 * The server runs with the flags `npm run start:prod` and the Docker image give it;
 * BENCH_SERVER_NODE_ARGS="…" replaces them (BENCH_SERVER_NODE_ARGS=" " runs Node's defaults).
 */
const NODE_ARGS =
  process.env.BENCH_SERVER_NODE_ARGS === undefined
    ? productionNodeOptions()
    : process.env.BENCH_SERVER_NODE_ARGS.split(' ').filter(Boolean);

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
  /** Per portal, from its enqueue to its first stored event: how long it waited for its turn. */
  firstPageP99Ms: number;
  firstPageMaxMs: number;
  /** Stored events the inbox had not yet run when the last one was stored. */
  inboxWaiting: number;
  /** From the first enqueue until the inbox had run every stored event; undefined: not within the wait. */
  inboxDoneSeconds: number | undefined;
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
        ...SERVER_ENV,
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
      // Polled from the drains' own per-portal counts, then checked once against the table: a
      // count(*) over a million stored events every 200 ms took a quarter of a second of Postgres
      // each, half a core taken from the fleet it measures.
      const storedCount = async (): Promise<number> => {
        const [{ count }] = await database.query<{ count: string }>(
          `SELECT count(*) FROM stored_events`,
        );
        return Number(count);
      };
      await waitUntil(
        `${total} stored events`,
        async () => {
          const [{ drained }] = await database.query<{ drained: string | null }>(
            `SELECT sum(total_drained_events) AS drained FROM offline_queue_states`,
          );
          return Number(drained ?? 0) >= total && (await storedCount()) >= total;
        },
        15 * 60_000,
        200,
      );
      const peakRss = memoryKiB(server.pid, 'VmHWM');
      const inboxWaiting = async (): Promise<number> => {
        const [{ waiting }] = await database.query<{ waiting: string }>(
          `SELECT count(*) AS waiting FROM stored_events WHERE status IN ('pending','failed')`,
        );
        return Number(waiting);
      };
      const waitingAtDrainEnd = await inboxWaiting();
      if (HEAP_SNAPSHOT) await takeHeapSnapshot(server.pid);
      let inboxDoneSeconds: number | undefined;
      await waitUntil(
        'the inbox to run every event',
        async () => (await inboxWaiting()) === 0,
        INBOX_WAIT_MS,
        // Each look counts the events still waiting (hundreds of thousands at 10,000 portals).
        1000,
      )
        .then(() => (inboxDoneSeconds = (Date.now() - startedAt) / 1000))
        .catch(() => undefined);
      const rows = await database.query<{ member_id: string; received_ms: string }>(
        `SELECT member_id, (extract(epoch FROM received_at) * 1000)::bigint AS received_ms FROM stored_events`,
      );
      const latencies = rows
        .map((row) => Number(row.received_ms) - enqueuedAt.get(row.member_id)!)
        .sort((a, b) => a - b);
      // A loop, not Math.max(...rows): a million arguments overflow the stack.
      let lastStored = -Infinity;
      const firstStored = new Map<string, number>();
      for (const row of rows) {
        const receivedMs = Number(row.received_ms);
        lastStored = Math.max(lastStored, receivedMs);
        const first = firstStored.get(row.member_id);
        if (first === undefined || receivedMs < first) firstStored.set(row.member_id, receivedMs);
      }
      const firstPageWaits = [...firstStored].map(
        ([memberId, ms]) => ms - enqueuedAt.get(memberId)!,
      );
      firstPageWaits.sort((a, b) => a - b);
      const seconds = (lastStored - startedAt) / 1000;
      return {
        portals,
        events: rows.length,
        seconds,
        eventsPerSecond: rows.length / seconds,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        firstPageP99Ms: percentile(firstPageWaits, 99),
        firstPageMaxMs: firstPageWaits[firstPageWaits.length - 1],
        inboxWaiting: waitingAtDrainEnd,
        inboxDoneSeconds,
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
      `${result.portals} portals × ${EVENTS_PER_PORTAL} events: ${result.events} stored in ${result.seconds.toFixed(1)} s = ${result.eventsPerSecond.toFixed(0)} events/s; time-to-stored p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms; first page of a portal p99 ${result.firstPageP99Ms} ms, max ${result.firstPageMaxMs} ms; inbox: ${result.inboxWaiting} not yet run when the last was stored (${((result.events - result.inboxWaiting) / result.seconds).toFixed(0)} runs/s), ${result.inboxDoneSeconds === undefined ? `not all run within ${INBOX_WAIT_MS / 1000} s more` : `all run after ${result.inboxDoneSeconds.toFixed(1)} s`}; server RSS idle ${result.idleRssMiB.toFixed(0)} MiB, peak ${result.peakRssMiB.toFixed(0)} MiB`,
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
