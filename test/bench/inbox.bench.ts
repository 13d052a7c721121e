/**
 * The inbox: how fast handler runs go through it (no-op handlers, in order per object) from one
 * and from two replicas, and what one claim costs behind a big backlog of blocked objects.
 *
 * Throughput: BENCH_INBOX_EVENTS events (default 20,000) over BENCH_INBOX_DEALS deals, stored the
 * way a drain stores them (pages through InboxService.insertOfflineEvents), then handled by
 * replicas that start once everything is stored; the run ends when every event is processed.
 * The replicas share this process (one event loop), so the two-replica figure shows claiming side
 * by side on one database, not two machines' worth of CPU.
 *
 * Claim cost: BENCH_INBOX_PROCESSED processed rows (default 1,000,000), 1,000 deals whose first
 * event is dead with 150 events behind each, and one busy deal with 100,000 events behind a
 * running first one; one claim is run (and rolled back) again and again. For comparison, the same
 * claim once every waiting event has a due time, as every stored event had before lines had heads.
 */
import { Injectable, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { claimStatements } from '../../src/inbox/inbox-worker.service';
import { InboxService } from '../../src/inbox/inbox.service';
import { OnBitrix24Event } from '../../src/inbox/on-bitrix24-event.decorator';
import { startTestApp, TestApp } from '../support/test-app';
import { createBenchDatabase, machineDescription, percentile } from './bench-environment';
import { dealUpdateRows } from '../support/offline-rows';

const EVENTS = Number(process.env.BENCH_INBOX_EVENTS ?? 20_000);
const DEALS = Number(process.env.BENCH_INBOX_DEALS ?? 2_000);
const PROCESSED = Number(process.env.BENCH_INBOX_PROCESSED ?? 1_000_000);
const CONCURRENCY = process.env.BENCH_INBOX_CONCURRENCY ?? '8';
const PAGE = 1000;
const CLAIM_RUNS = 30;

@Injectable()
class NoOpDealHandler {
  runs = 0;

  @OnBitrix24Event('ONCRMDEALUPDATE')
  onDeal(): void {
    this.runs += 1;
  }
}

@Module({ providers: [NoOpDealHandler] })
class NoOpHandlersModule {}

/** Stores `deals` (one entry per event, in order) as drained pages of one portal. */
async function storePages(app: TestApp, memberId: string, deals: readonly string[]): Promise<void> {
  const inbox = app.app.get(InboxService);
  for (let start = 0; start < deals.length; start += PAGE) {
    await app.app.get(DataSource).transaction(async (manager) => {
      await inbox.insertOfflineEvents(
        manager,
        memberId,
        `bench-${memberId}-${start}`,
        dealUpdateRows(start + 1, deals.slice(start, start + PAGE), 'bench'),
      );
    });
  }
}

async function throughput(replicas: number): Promise<void> {
  const database = await createBenchDatabase();
  try {
    const arranger = await startTestApp({
      databaseUrl: database.url,
      env: { INBOX_CONCURRENCY: '0', LOG_LEVEL: 'warn' },
    });
    // Events of a deal spread through the pages, as changes of many objects interleave.
    const deals = Array.from({ length: EVENTS }, (_, i) => `deal-${i % DEALS}`);
    await storePages(arranger, 'bench-inbox-portal', deals);
    await arranger.close();

    const startedAt = Date.now();
    const apps: TestApp[] = [];
    for (let i = 0; i < replicas; i++) {
      apps.push(
        await startTestApp({
          databaseUrl: database.url,
          env: { INBOX_CONCURRENCY: CONCURRENCY, INBOX_POLL_INTERVAL_MS: '200', LOG_LEVEL: 'warn' },
          vendorModules: [NoOpHandlersModule],
        }),
      );
    }
    for (;;) {
      const [{ left }] = await database.query<{ left: number }>(
        `SELECT count(*)::int AS left FROM stored_events WHERE status <> 'processed'`,
      );
      if (left === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (Date.now() - startedAt) / 1000;
    const [{ disorder }] = await database.query<{ disorder: number }>(
      `SELECT count(*)::int AS disorder FROM (
         SELECT processed_at < lag(processed_at) OVER (PARTITION BY ordering_key ORDER BY id) AS late
         FROM stored_events) AS runs
       WHERE late`,
    );
    const [{ attempts }] = await database.query<{ attempts: number }>(
      `SELECT count(*)::int AS attempts FROM event_attempts`,
    );
    const perReplica = apps.map((app) => app.app.get(NoOpDealHandler).runs);
    for (const app of apps) await app.close();
    console.log(
      `throughput, ${replicas} replica(s), INBOX_CONCURRENCY ${CONCURRENCY}: ${EVENTS} events over ${DEALS} deals in ${seconds.toFixed(1)} s = ${(EVENTS / seconds).toFixed(0)} runs/s (start-up included); runs per replica ${perReplica.join(' + ')}; attempts recorded ${attempts}; runs of a deal out of id order ${disorder}`,
    );
  } finally {
    await database.drop();
  }
}

async function timeClaims(dataSource: DataSource): Promise<{ p50: number; p95: number }> {
  const times: number[] = [];
  for (let i = 0; i < CLAIM_RUNS; i++) {
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      // The worker's statements: its planner settings, then the timed claim.
      const [settings, claim] = claimStatements(10, 30, 8);
      await runner.query(settings.sql, [...settings.params]);
      const started = process.hrtime.bigint();
      await runner.query(claim.sql, [...claim.params]);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p95: percentile(times, 95) };
}

async function claimCost(): Promise<void> {
  const database = await createBenchDatabase();
  try {
    const app = await startTestApp({
      databaseUrl: database.url,
      env: { INBOX_CONCURRENCY: '0', LOG_LEVEL: 'warn' },
    });
    const dataSource = app.app.get(DataSource);
    const loadStarted = Date.now();
    await database.query(
      `INSERT INTO stored_events (member_id, source, queue_id, event_name, ordering_key, data,
         status, attempts, next_attempt_at, processed_at)
       SELECT 'bench-history', 'offline', n, 'ONCRMDEALUPDATE', 'CRMDEAL:' || (n % 50000),
              jsonb_build_object('FIELDS', jsonb_build_object('ID', n % 50000)),
              'processed', 1, NULL, now()
       FROM generate_series(1, $1::int) AS n`,
      [PROCESSED],
    );
    // 1,000 deals, 150 events each; the first of each then fails for good.
    await storePages(
      app,
      'bench-blocked',
      Array.from({ length: 150_000 }, (_, i) => `blocked-${i % 1000}`),
    );
    await database.query(
      `UPDATE stored_events SET status = 'dead', next_attempt_at = NULL, attempts = 8
       WHERE member_id = 'bench-blocked' AND next_attempt_at IS NOT NULL`,
    );
    // One busy deal: 100,000 events behind a first one that is running.
    await storePages(
      app,
      'bench-busy',
      Array.from({ length: 100_000 }, () => 'busy'),
    );
    await database.query(
      `UPDATE stored_events SET claim_expires_at = now() + interval '1 hour', attempts = 1
       WHERE member_id = 'bench-busy' AND next_attempt_at IS NOT NULL`,
    );
    await storePages(
      app,
      'bench-free',
      Array.from({ length: 10 }, (_, i) => `free-${i}`),
    );
    await database.query('VACUUM ANALYZE stored_events');
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    const [{ total, waiting }] = await database.query<{ total: number; waiting: number }>(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE status IN ('pending','failed') AND next_attempt_at IS NULL)::int AS waiting
       FROM stored_events`,
    );
    const heads = await timeClaims(dataSource);
    await database.query(
      `UPDATE stored_events SET next_attempt_at = received_at
       WHERE status IN ('pending','failed') AND next_attempt_at IS NULL`,
    );
    await database.query('VACUUM ANALYZE stored_events');
    const everyRowDue = await timeClaims(dataSource);
    await app.close();
    console.log(
      `claim cost: ${total} stored events (${PROCESSED} processed, 250,000 behind a dead or running first event of their deal, ${waiting} of them waiting), loaded in ${loadSeconds.toFixed(0)} s`,
    );
    console.log(
      `  one claim of 10 (the 10 free deals), lines with heads: p50 ${heads.p50.toFixed(2)} ms, p95 ${heads.p95.toFixed(2)} ms over ${CLAIM_RUNS} claims`,
    );
    console.log(
      `  the same claim with every waiting event due (as before heads): p50 ${everyRowDue.p50.toFixed(1)} ms, p95 ${everyRowDue.p95.toFixed(1)} ms`,
    );
  } finally {
    await database.drop();
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${machineDescription()}`);
  const only = process.env.BENCH_INBOX_PART;
  if (only === undefined || only === 'throughput') {
    await throughput(1);
    await throughput(2);
  }
  if (only === undefined || only === 'claim') await claimCost();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
