import { Injectable, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { InboxEvent } from '../../src/inbox/inbox-event';
import { CLAIM_DUE_SQL } from '../../src/inbox/inbox-worker.service';
import { InboxService } from '../../src/inbox/inbox.service';
import { OnBitrix24Event } from '../../src/inbox/on-bitrix24-event.decorator';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';
import { eventually } from '../support/eventually';
import { dealUpdateRows } from '../support/offline-rows';

/**
 * Records every run of a deal event: the order runs of one deal start in, and whether two runs
 * of one deal ever overlap. Deals named in `slow` take that long; a replay of an event named in
 * `slowReplays` takes that long.
 */
@Injectable()
class LineRecorder {
  readonly started = new Map<string, string[]>();
  readonly overlaps: string[] = [];
  readonly slow = new Map<string, number>();
  readonly slowReplays = new Map<string, number>();
  private readonly running = new Map<string, string>();

  @OnBitrix24Event('ONCRMDEALUPDATE')
  async onDeal(event: InboxEvent): Promise<void> {
    const deal = String((event.data as { FIELDS: { ID: string } }).FIELDS.ID);
    const other = this.running.get(deal);
    if (other !== undefined) this.overlaps.push(`${deal}: ${event.id} started while ${other} ran`);
    this.running.set(deal, event.id);
    this.started.set(deal, [...(this.started.get(deal) ?? []), event.id]);
    const ms =
      event.trigger === 'replay' ? (this.slowReplays.get(event.id) ?? 0) : this.slow.get(deal);
    await new Promise((resolve) => setTimeout(resolve, ms ?? 0));
    this.running.delete(deal);
  }
}

@Module({ providers: [LineRecorder] })
class LineRecorderModule {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the inbox: an object's line", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  describe('with a worker', () => {
    let app: TestApp;
    let inbox: InboxService;
    let dataSource: DataSource;
    let recorder: LineRecorder;
    let sequence = 0;
    const memberId = 'lines-portal';

    beforeAll(async () => {
      app = await startTestApp({
        databaseUrl: database.url,
        env: { INBOX_CONCURRENCY: '8', INBOX_POLL_INTERVAL_MS: '100', LOG_LEVEL: 'warn' },
        vendorModules: [LineRecorderModule],
      });
      inbox = app.app.get(InboxService);
      dataSource = app.app.get(DataSource);
      recorder = app.app.get(LineRecorder);
    });

    afterAll(async () => {
      await app?.close();
    });

    async function storeOnline(deal: string): Promise<void> {
      sequence += 1;
      await inbox.storeOnlineEvent({
        memberId,
        eventName: 'ONCRMDEALUPDATE',
        data: { FIELDS: { ID: deal } },
        bitrixTimestamp: new Date(),
        dedupKey: `lines-${sequence}`,
      });
    }

    async function idsOf(deal: string): Promise<string[]> {
      const rows: { id: string }[] = await dataSource.query(
        `SELECT id::text AS id FROM stored_events
         WHERE member_id = $1 AND ordering_key = $2 ORDER BY stored_events.id`,
        [memberId, `CRMDEAL:${deal}`],
      );
      return rows.map((row) => row.id);
    }

    async function unprocessed(): Promise<number> {
      const [row]: { n: number }[] = await dataSource.query(
        `SELECT count(*)::int AS n FROM stored_events WHERE member_id = $1 AND status <> 'processed'`,
        [memberId],
      );
      return row.n;
    }

    it('takes ids of a line in commit order: an event stored while an earlier one of its object is still being committed waits for that commit and runs after it', async () => {
      const drainCommitted = dataSource.transaction(async (manager) => {
        await inbox.insertOfflineEvents(manager, memberId, 'p-commit-order', [
          ...dealUpdateRows(1, ['commit-order']),
        ]);
        // The online event of the same deal arrives while the drain has not committed yet.
        const online = storeOnline('commit-order');
        await sleep(1000);
        expect(recorder.started.get('commit-order')).toBeUndefined();
        return { online };
      });
      const { online } = await drainCommitted;
      inbox.eventsCommitted();
      await online;
      const ids = await idsOf('commit-order');
      expect(ids).toHaveLength(2);
      await eventually(
        async () => recorder.started.get('commit-order') ?? [],
        (started) => started.length === 2,
      );
      // The offline row was stored first: it has the lower id and ran first.
      expect(recorder.started.get('commit-order')).toEqual(ids);
      expect(recorder.overlaps).toEqual([]);
    });

    it("starts nothing of an object while an event of it runs, even one ordered before it (an earlier event's id committed late)", async () => {
      // An id handed out before another of its line and committed after it (as two writers
      // without the line's lock would do): the later one is running when the earlier appears.
      const [{ burnt }]: { burnt: string }[] = await dataSource.query(
        `SELECT nextval(pg_get_serial_sequence('stored_events', 'id'))::text AS burnt`,
      );
      const store = (id: string | null, dedupKey: string, claimed: boolean) =>
        dataSource.query<{ id: string }[]>(
          `INSERT INTO stored_events (id, member_id, source, dedup_key, event_name, ordering_key,
             data, attempts, claim_expires_at, run_token)
           VALUES (COALESCE($1::bigint, nextval(pg_get_serial_sequence('stored_events', 'id'))),
                   $2, 'online', $3, 'ONCRMDEALUPDATE', 'CRMDEAL:late-id',
                   '{"FIELDS":{"ID":"late-id"}}', $4::int,
                   CASE WHEN $5 THEN now() + interval '2 seconds' END, CASE WHEN $5 THEN -1 END)
           RETURNING id::text AS id`,
          [id, memberId, dedupKey, claimed ? 1 : 0, claimed],
        );
      const [later] = await store(null, 'late-id-b', true);
      const [earlier] = await store(burnt, 'late-id-a', false);
      inbox.eventsCommitted();
      await sleep(1000);
      expect(recorder.started.get('late-id')).toBeUndefined();
      // The running one's claim lapses (its process died): the earlier one goes first.
      await eventually(
        async () => recorder.started.get('late-id') ?? [],
        (started) => started.length === 2,
      );
      expect(recorder.started.get('late-id')).toEqual([earlier.id, later.id]);
    });

    it('runs nothing of an object while a replay of an earlier event of it runs', async () => {
      await storeOnline('replayed');
      await eventually(unprocessed, (n) => n === 0);
      const [first] = await idsOf('replayed');
      recorder.slowReplays.set(first, 1500);
      const replay = inbox.replay(first);
      await sleep(200);
      await storeOnline('replayed');
      await sleep(800);
      expect(recorder.started.get('replayed')).toEqual([first, first]);
      await replay;
      await eventually(
        async () => recorder.started.get('replayed') ?? [],
        (started) => started.length === 3,
      );
      expect(recorder.overlaps).toEqual([]);
    });

    it('keeps every line in order and runs one event of an object at a time while online and offline events of the same objects arrive together', async () => {
      const deals = ['mix-1', 'mix-2', 'mix-3', 'mix-4', 'mix-5'];
      for (const deal of deals) recorder.slow.set(deal, 5);
      const pages = Array.from({ length: 8 }, (_, page) =>
        dataSource.transaction(async (manager) => {
          const picked = Array.from({ length: 10 }, (_, i) => deals[(page + i) % deals.length]);
          await inbox.insertOfflineEvents(
            manager,
            memberId,
            `p-mix-${page}`,
            dealUpdateRows(1000 + page * 10, picked),
          );
          await sleep(20);
        }),
      );
      const online = Array.from({ length: 40 }, (_, i) => storeOnline(deals[i % deals.length]));
      await Promise.all([...pages, ...online]);
      inbox.eventsCommitted();
      await eventually(unprocessed, (n) => n === 0);
      for (const deal of deals) {
        const ids = await idsOf(deal);
        expect(ids).toHaveLength(24);
        expect(recorder.started.get(deal)).toEqual(ids);
      }
      expect(recorder.overlaps).toEqual([]);
      const [{ waiting }]: { waiting: number }[] = await dataSource.query(
        `SELECT count(*)::int AS waiting FROM stored_events WHERE next_attempt_at IS NULL
           AND status IN ('pending','failed')`,
      );
      expect(waiting).toBe(0);
    });
  });

  describe('claiming behind blocked objects', () => {
    let app: TestApp;
    let inbox: InboxService;
    let dataSource: DataSource;
    const memberId = 'blocked-portal';

    beforeAll(async () => {
      // No worker: the claim is examined, not run.
      app = await startTestApp({
        databaseUrl: database.url,
        env: { INBOX_CONCURRENCY: '0', LOG_LEVEL: 'warn' },
      });
      inbox = app.app.get(InboxService);
      dataSource = app.app.get(DataSource);
    });

    afterAll(async () => {
      await app?.close();
    });

    /** The claim's plan, run and rolled back: how often it checked a candidate's line. */
    async function lineChecksOfOneClaim(): Promise<{ checks: number; claimed: number }> {
      const runner = dataSource.createQueryRunner();
      await runner.connect();
      try {
        await runner.startTransaction();
        const explained = (await runner.query(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${CLAIM_DUE_SQL}`,
          [10, 30, 5],
        )) as { 'QUERY PLAN': { Plan: PlanNode }[] }[];
        const plans = explained[0]['QUERY PLAN'];
        await runner.rollbackTransaction();
        const plan = plans[0].Plan;
        let checks = 0;
        const walk = (node: PlanNode): void => {
          if (node['Subplan Name'] !== undefined) checks += node['Actual Loops'] ?? 0;
          for (const child of node.Plans ?? []) walk(child);
        };
        walk(plan);
        return { checks, claimed: plan['Actual Rows'] ?? 0 };
      } finally {
        await runner.release();
      }
    }

    it('claims at the same cost whatever waits behind a dead event or a busy object', async () => {
      const blocked = Array.from({ length: 3000 }, () => 'blocked');
      const busy = Array.from({ length: 3000 }, () => 'busy');
      await dataSource.transaction(async (manager) => {
        await inbox.insertOfflineEvents(manager, memberId, 'p-blocked', dealUpdateRows(1, blocked));
        await inbox.insertOfflineEvents(manager, memberId, 'p-busy', dealUpdateRows(5001, busy));
        await inbox.insertOfflineEvents(
          manager,
          memberId,
          'p-free',
          dealUpdateRows(9001, ['free-1', 'free-2', 'free-3']),
        );
      });
      // The blocked deal's first event failed for good; the busy deal's first one is running.
      await dataSource.query(
        `UPDATE stored_events SET status = 'dead', next_attempt_at = NULL
         WHERE member_id = $1 AND queue_id = 1`,
        [memberId],
      );
      await dataSource.query(
        `UPDATE stored_events SET claim_expires_at = now() + interval '1 hour', attempts = 1
         WHERE member_id = $1 AND queue_id = 5001`,
        [memberId],
      );
      const [{ due }]: { due: number }[] = await dataSource.query(
        `SELECT count(*)::int AS due FROM stored_events
         WHERE status IN ('pending','failed') AND next_attempt_at <= now()`,
      );
      // The heads of the lines: the busy deal's running first event and the three free deals.
      expect(due).toBe(4);
      const { checks, claimed } = await lineChecksOfOneClaim();
      expect(claimed).toBe(3);
      // Each candidate's line is checked by two small subplans; 6,000 waiting rows cost nothing.
      expect(checks).toBeLessThanOrEqual(4 * 2);
    });
  });
});

interface PlanNode {
  'Subplan Name'?: string;
  'Actual Loops'?: number;
  'Actual Rows'?: number;
  Plans?: PlanNode[];
}
