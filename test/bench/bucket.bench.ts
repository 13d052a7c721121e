/**
 * The cost of the shared per-portal bucket: calls per second through SharedLeakyBucket (one
 * Postgres statement per call) for 1,000 portals from two processes at once, and the latency one
 * acquire() adds (p50, p99), next to the in-memory LeakyBucket in the same run. The limits are set
 * so high that no call ever waits for room: what is measured is the bookkeeping alone.
 *
 * The parent creates the database and forks two copies of itself (BENCH_BUCKET_WORKER=1), which
 * run their loops at the same moment and report back.
 */
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { LeakyBucket, type PortalBucket, type RateLimit } from '../../src/bitrix24/leaky-bucket';
import { SharedLeakyBucket } from '../../src/bitrix24/shared-leaky-bucket';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { createPinoLogger } from '../../src/logging/app-logger';
import { createBenchDatabase, machineDescription, percentile } from './bench-environment';

const PORTALS = 1000;
const PROCESSES = 2;
/**
 * Concurrent callers per process: one (the latency a call adds on a quiet replica), then many (a
 * replica's drain and handlers all calling at once: throughput).
 */
const PHASES = [1, 16];
const SECONDS = Number(process.env.BENCH_BUCKET_SECONDS ?? 8);
const UNLIMITED: RateLimit = { rps: 1e9, burst: 1e9 };

interface RunResult {
  calls: number;
  seconds: number;
  latenciesMs: number[];
}

async function run(
  callers: number,
  bucketFor: (memberId: string) => PortalBucket,
): Promise<RunResult> {
  const latenciesMs: number[] = [];
  const startedAt = performance.now();
  const endAt = startedAt + SECONDS * 1000;
  let next = Math.floor(Math.random() * PORTALS);
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < endAt) {
        const memberId = `portal-${next++ % PORTALS}`;
        const bucket = bucketFor(memberId);
        const sentAt = performance.now();
        await bucket.acquire();
        latenciesMs.push(performance.now() - sentAt);
      }
    }),
  );
  return {
    calls: latenciesMs.length,
    seconds: (performance.now() - startedAt) / 1000,
    latenciesMs,
  };
}

async function worker(): Promise<void> {
  const url = process.env.BENCH_BUCKET_DATABASE_URL!;
  const dataSource = new DataSource(dataSourceOptions(url));
  await dataSource.initialize();
  const log: Logger = createPinoLogger('warn');
  // Warm the pool and the rows before the clock starts.
  await Promise.all(
    Array.from({ length: PORTALS }, (_, index) =>
      new SharedLeakyBucket(`portal-${index}`, UNLIMITED, dataSource, log).acquire(),
    ),
  );
  for (const callers of PHASES) {
    process.send!({ ready: true });
    await new Promise<void>((resolve) => process.once('message', () => resolve()));
    const shared = await run(
      callers,
      (memberId) => new SharedLeakyBucket(memberId, UNLIMITED, dataSource, log),
    );
    process.send!({ shared });
  }
  await dataSource.destroy();
}

function summary(label: string, results: RunResult[]): string {
  const calls = results.reduce((sum, result) => sum + result.calls, 0);
  const seconds = Math.max(...results.map((result) => result.seconds));
  const sorted = results.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
  return `| ${label.padEnd(44)} | ${String(Math.round(calls / seconds)).padStart(9)} | ${percentile(sorted, 50).toFixed(3).padStart(7)} | ${percentile(sorted, 99).toFixed(3).padStart(7)} |`;
}

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  try {
    console.log(`${machineDescription()}; load average ${loadavg()[0].toFixed(1)} at start`);
    console.log(`${PORTALS} portals, ${SECONDS} s per run`);

    const children = Array.from({ length: PROCESSES }, () =>
      fork(__filename, [], {
        env: {
          ...process.env,
          BENCH_BUCKET_WORKER: '1',
          BENCH_BUCKET_DATABASE_URL: database.url,
        },
        execArgv: process.execArgv,
      }),
    );
    const message = (child: (typeof children)[number], key: string): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const onMessage = (value: Record<string, unknown>): void => {
          if (key in value) {
            child.off('message', onMessage);
            child.off('exit', onExit);
            resolve(value[key]);
          }
        };
        const onExit = (code: number | null): void =>
          reject(new Error(`bench worker exited with ${code}`));
        child.on('message', onMessage);
        child.once('exit', onExit);
      });
    const lines: string[] = [];
    for (const callers of PHASES) {
      // In memory, in this process (a replica on its own): the same loops, no database.
      const memoryBuckets = new Map<string, LeakyBucket>();
      const memory = await run(callers, (memberId) => {
        let bucket = memoryBuckets.get(memberId);
        if (!bucket) memoryBuckets.set(memberId, (bucket = new LeakyBucket(UNLIMITED)));
        return bucket;
      });
      await Promise.all(children.map((child) => message(child, 'ready')));
      const results = children.map((child) => message(child, 'shared') as Promise<RunResult>);
      for (const child of children) child.send({ go: true });
      const shared = await Promise.all(results);
      lines.push(summary(`${callers} caller(s): in memory, 1 process`, [memory]));
      lines.push(summary(`${callers} caller(s): shared, ${PROCESSES} processes together`, shared));
      for (const [index, result] of shared.entries()) {
        lines.push(summary(`  of which process ${index + 1}`, [result]));
      }
    }

    const rows: { n: string }[] = await database.query(
      'SELECT count(*) AS n FROM portal_rate_buckets',
    );
    console.log('');
    console.log('');
    console.log(`| ${'callers per process, bucket'.padEnd(44)} | calls / s | p50 ms  | p99 ms  |`);
    console.log(`| ${'-'.repeat(44)} | --------- | ------- | ------- |`);
    for (const line of lines) console.log(line);
    console.log(`\nbucket rows: ${rows[0].n}`);
  } finally {
    await database.drop();
  }
}

if (process.env.BENCH_BUCKET_WORKER === '1') {
  worker().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
