import { Injectable, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { InboxEvent } from '../../src/inbox/inbox-event';
import { InboxService } from '../../src/inbox/inbox.service';
import { OnBitrix24Event } from '../../src/inbox/on-bitrix24-event.decorator';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';
import { eventually } from '../support/eventually';
import { dealUpdateRows } from '../support/offline-rows';

/**
 * What both replicas' handlers saw, in one place: they run in this one test process, so a run of
 * a deal on replica B while replica A still runs that deal shows up here as an overlap.
 */
const seen = {
  started: new Map<string, string[]>(),
  overlaps: [] as string[],
  running: new Map<string, string>(),
  byReplica: new Map<number, number>(),
  runsOf: new Map<string, number>(),
  /** While set, handlers wait for it: runs then end together and are recorded as one batch. */
  gate: undefined as Promise<void> | undefined,
  reset(): void {
    this.started.clear();
    this.overlaps.length = 0;
    this.running.clear();
    this.byReplica.clear();
    this.runsOf.clear();
    this.gate = undefined;
  },
};

let replicas = 0;

@Injectable()
class SharedLineRecorder {
  /** Which replica (app instance) this handler belongs to. */
  private readonly replica = ++replicas;

  @OnBitrix24Event('ONCRMDEALUPDATE')
  async onDeal(event: InboxEvent): Promise<void> {
    const deal = String((event.data as { FIELDS: { ID: string } }).FIELDS.ID);
    const other = seen.running.get(deal);
    if (other !== undefined) seen.overlaps.push(`${deal}: ${event.id} started while ${other} ran`);
    seen.running.set(deal, event.id);
    seen.started.set(deal, [...(seen.started.get(deal) ?? []), event.id]);
    seen.byReplica.set(this.replica, (seen.byReplica.get(this.replica) ?? 0) + 1);
    seen.runsOf.set(event.id, (seen.runsOf.get(event.id) ?? 0) + 1);
    if (seen.gate) await seen.gate;
    // A little work, so that runs of both replicas interleave.
    await new Promise((resolve) => setTimeout(resolve, Number(event.id) % 3));
    seen.running.delete(deal);
  }
}

@Module({ providers: [SharedLineRecorder] })
class SharedLineRecorderModule {}

/**
 * Runs are claimed many at a time and recorded many at a time (RunRecordQueue). These tests hold
 * the batched paths to the inbox's promises: one run of an object at a time and in order across
 * replicas, and a batch that cannot be written losing no run and costing the other runs nothing.
 */
describe('the inbox: batched claims and records', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  async function count(dataSource: DataSource, sql: string, params: unknown[]): Promise<number> {
    const [row]: { n: number }[] = await dataSource.query(sql, params);
    return row.n;
  }

  describe('two replicas on one database', () => {
    let a: TestApp;
    let b: TestApp;
    const memberId = 'batch-replicas-portal';

    beforeAll(async () => {
      seen.reset();
      const env = { INBOX_CONCURRENCY: '8', INBOX_POLL_INTERVAL_MS: '100', LOG_LEVEL: 'warn' };
      const vendorModules = [SharedLineRecorderModule];
      a = await startTestApp({ databaseUrl: database.url, env, vendorModules });
      b = await startTestApp({ databaseUrl: database.url, env, vendorModules });
    });

    afterAll(async () => {
      await a?.close();
      await b?.close();
    });

    it('never runs two events of one object at once and runs each object in id order, though both claim and record in batches', async () => {
      const dataSource = a.app.get(DataSource);
      const inbox = a.app.get(InboxService);
      const deals = Array.from({ length: 12 }, (_, i) => `deal-${i}`);
      // 20 pages of 15 events each: every claim of 8 finds several events of one deal due.
      for (let page = 0; page < 20; page += 1) {
        const picked = Array.from({ length: 15 }, (_, i) => deals[(page * 7 + i) % deals.length]);
        await dataSource.transaction((manager) =>
          inbox.insertOfflineEvents(
            manager,
            memberId,
            `p-${page}`,
            dealUpdateRows(page * 100, picked),
          ),
        );
        inbox.eventsCommitted();
        b.app.get(InboxService).eventsCommitted();
      }
      await eventually(
        () =>
          count(
            dataSource,
            `SELECT count(*)::int AS n FROM stored_events WHERE member_id = $1 AND status <> 'processed'`,
            [memberId],
          ),
        (n) => n === 0,
      );

      expect(seen.overlaps).toEqual([]);
      for (const deal of deals) {
        const rows: { id: string }[] = await dataSource.query(
          `SELECT id::text AS id FROM stored_events
           WHERE member_id = $1 AND ordering_key = $2 ORDER BY stored_events.id`,
          [memberId, `CRMDEAL:${deal}`],
        );
        expect(seen.started.get(deal)).toEqual(rows.map((row) => row.id));
      }
      // Both replicas did part of the work, and every event ran once and was recorded once.
      expect([...seen.byReplica.values()].every((runs) => runs > 0)).toBe(true);
      expect(seen.byReplica.size).toBe(2);
      expect([...seen.runsOf.values()].every((runs) => runs === 1)).toBe(true);
      expect(seen.runsOf.size).toBe(300);
      const attempts: { n: number; events: number }[] = await dataSource.query(
        `SELECT count(*)::int AS n, count(DISTINCT a.event_id)::int AS events
         FROM event_attempts a JOIN stored_events e ON e.id = a.event_id WHERE e.member_id = $1`,
        [memberId],
      );
      expect(attempts).toEqual([{ n: 300, events: 300 }]);
    });
  });

  describe('a batch that cannot be written', () => {
    let app: TestApp;
    let dataSource: DataSource;
    let inbox: InboxService;
    const memberId = 'batch-failure-portal';

    beforeAll(async () => {
      seen.reset();
      app = await startTestApp({
        databaseUrl: database.url,
        env: { INBOX_CONCURRENCY: '8', INBOX_POLL_INTERVAL_MS: '100', LOG_LEVEL: 'warn' },
        vendorModules: [SharedLineRecorderModule],
      });
      dataSource = app.app.get(DataSource);
      inbox = app.app.get(InboxService);
    });

    afterAll(async () => {
      await dataSource
        ?.query(`DROP TRIGGER IF EXISTS poison_attempt ON event_attempts`)
        .catch(() => undefined);
      await app?.close();
    });

    it('records the other runs one by one and runs the unwritable one again once its claim lapses', async () => {
      // Eight events of eight deals; the attempt row of one of them cannot be inserted.
      const deals = Array.from({ length: 8 }, (_, i) => `solo-${i}`);
      let release!: () => void;
      seen.gate = new Promise<void>((resolve) => (release = resolve));
      await dataSource.transaction((manager) =>
        inbox.insertOfflineEvents(manager, memberId, 'p-poison', dealUpdateRows(5000, deals)),
      );
      const ids: { id: string }[] = await dataSource.query(
        `SELECT id::text AS id FROM stored_events WHERE member_id = $1 ORDER BY stored_events.id`,
        [memberId],
      );
      const poisoned = ids[3].id;
      await dataSource.query(`
        CREATE OR REPLACE FUNCTION poison_attempt() RETURNS trigger AS $$
        BEGIN
          IF NEW.event_id = ${Number(poisoned)} THEN RAISE EXCEPTION 'attempt row refused'; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql`);
      await dataSource.query(
        `CREATE TRIGGER poison_attempt BEFORE INSERT ON event_attempts
         FOR EACH ROW EXECUTE FUNCTION poison_attempt()`,
      );
      inbox.eventsCommitted();
      // All eight run at once; released together, they end in one turn and form one batch.
      await eventually(
        async () => seen.runsOf.size,
        (n) => n === 8,
      );
      release();

      const processed = `SELECT count(*)::int AS n FROM stored_events
                         WHERE member_id = $1 AND status = 'processed'`;
      await eventually(
        () => count(dataSource, processed, [memberId]),
        (n) => n === 7,
      );
      // The batch failed as a whole; the seven others were recorded on their own, once each.
      const perEvent: { id: string; attempts: number }[] = await dataSource.query(
        `SELECT e.id::text AS id, count(a.id)::int AS attempts
         FROM stored_events e LEFT JOIN event_attempts a ON a.event_id = e.id
         WHERE e.member_id = $1 GROUP BY e.id ORDER BY e.id`,
        [memberId],
      );
      expect(perEvent).toEqual(ids.map(({ id }) => ({ id, attempts: id === poisoned ? 0 : 1 })));
      expect(
        app.logs.some((line) => line.includes('could not record a batch of handler runs')),
      ).toBe(true);
      // The unwritable run kept its claim: nothing runs it again before the claim lapses.
      const [held]: { status: string; claimed: boolean }[] = await dataSource.query(
        `SELECT status, claim_expires_at > now() AS claimed FROM stored_events WHERE id = $1`,
        [poisoned],
      );
      expect(held).toEqual({ status: 'pending', claimed: true });
      expect(seen.runsOf.get(poisoned)).toBe(1);

      // The fault is gone and the claim's lease runs out (as 30 s later): it runs again, once.
      await dataSource.query(`DROP TRIGGER poison_attempt ON event_attempts`);
      await dataSource.query(
        `UPDATE stored_events SET claim_expires_at = now() - interval '1 second' WHERE id = $1`,
        [poisoned],
      );
      inbox.eventsCommitted();
      await eventually(
        () => count(dataSource, processed, [memberId]),
        (n) => n === 8,
      );
      expect(seen.runsOf.get(poisoned)).toBe(2);
      expect([...seen.runsOf.entries()].filter(([, runs]) => runs !== 1)).toEqual([[poisoned, 2]]);
      const [attempts]: { n: number }[] = await dataSource.query(
        `SELECT count(*)::int AS n FROM event_attempts WHERE event_id = $1`,
        [poisoned],
      );
      expect(attempts.n).toBe(1);
    });
  });
});
