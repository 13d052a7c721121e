import { RetentionService } from '../../src/retention/retention.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';
import { Client } from 'pg';

/**
 * Retention retires processed events older than RETENTION_DAYS and cleared drain batches past
 * Bitrix24's process_id lifetime, and nothing that the inbox or the drain could still need.
 */
describe('retention', () => {
  let database: TestDatabase;
  let app: TestApp;
  let sql: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startTestApp({ databaseUrl: database.url, env: { RETENTION_DAYS: '30' } });
    sql = new Client({ connectionString: database.url });
    await sql.connect();
    await sql.query(
      `INSERT INTO portals (member_id, domain, client_endpoint, status)
       VALUES ('retention-portal', 'r.bitrix24.test', 'https://r.bitrix24.test/rest/', 'active')`,
    );
  });

  afterAll(async () => {
    await sql?.end();
    await app?.close();
    await database?.drop();
  });

  async function storeEvent(row: {
    name: string;
    status: string;
    ageDays: number;
    source?: 'online' | 'offline';
    processId?: string | null;
    queueId?: number;
  }): Promise<string> {
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO stored_events (member_id, source, queue_id, process_id, event_name, data,
          status, received_at, next_attempt_at)
       VALUES ('retention-portal', $1, $2, $3, $4, '{}'::jsonb, $5,
               now() - make_interval(days => $6), NULL)
       RETURNING id`,
      [
        row.source ?? 'offline',
        row.queueId ?? null,
        row.processId ?? null,
        row.name,
        row.status,
        row.ageDays,
      ],
    );
    await sql.query(
      `INSERT INTO event_attempts (event_id, attempt, trigger, outcome, started_at, finished_at)
       VALUES ($1, 1, 'automatic', 'processed', now(), now())`,
      [rows[0].id],
    );
    return rows[0].id;
  }

  async function batch(processId: string, state: 'committed' | 'cleared', ageDays: number) {
    await sql.query(
      `INSERT INTO drain_batches (member_id, process_id, state, event_count, committed_at, cleared_at)
       VALUES ('retention-portal', $1, $2::varchar, 1, now() - make_interval(days => $3),
               CASE WHEN $2::text = 'cleared' THEN now() - make_interval(days => $3) END)`,
      [processId, state, ageDays],
    );
  }

  it('retires old processed events and old cleared batches, and keeps everything still needed', async () => {
    await batch('cleared-old', 'cleared', 40);
    await batch('cleared-recent', 'cleared', 31);
    await batch('uncleared', 'committed', 40);
    const retired = [
      await storeEvent({ name: 'OLD_ONLINE', status: 'processed', ageDays: 31, source: 'online' }),
      await storeEvent({
        name: 'OLD_CLEARED',
        status: 'processed',
        ageDays: 31,
        processId: 'cleared-recent',
        queueId: 1,
      }),
      await storeEvent({ name: 'OLD_AT_MOST_ONCE', status: 'processed', ageDays: 45, queueId: 2 }),
    ];
    const kept = [
      await storeEvent({ name: 'RECENT', status: 'processed', ageDays: 29, source: 'online' }),
      await storeEvent({ name: 'OLD_DEAD', status: 'dead', ageDays: 90, source: 'online' }),
      await storeEvent({ name: 'OLD_FAILED', status: 'failed', ageDays: 90, source: 'online' }),
      await storeEvent({ name: 'OLD_PENDING', status: 'pending', ageDays: 90, source: 'online' }),
      // Its batch is not cleared: a resume would read the row again, and only this row dedups it.
      await storeEvent({
        name: 'OLD_UNCLEARED',
        status: 'processed',
        ageDays: 40,
        processId: 'uncleared',
        queueId: 3,
      }),
    ];

    const report = await app.app.get(RetentionService).runOnce();

    expect(report).toEqual({ ran: true, storedEvents: 3, drainBatches: 1 });
    const { rows: left } = await sql.query<{ id: string }>(
      `SELECT id FROM stored_events WHERE member_id = 'retention-portal' ORDER BY id`,
    );
    expect(left.map((row) => row.id)).toEqual(kept);
    const { rows: attempts } = await sql.query<{ event_id: string }>(
      'SELECT event_id FROM event_attempts WHERE event_id = ANY($1)',
      [retired],
    );
    expect(attempts).toEqual([]);
    const { rows: batches } = await sql.query<{ process_id: string }>(
      `SELECT process_id FROM drain_batches WHERE member_id = 'retention-portal' ORDER BY process_id`,
    );
    expect(batches.map((row) => row.process_id)).toEqual(['cleared-recent', 'uncleared']);

    // Nothing more to do on a second run.
    expect(await app.app.get(RetentionService).runOnce()).toEqual({
      ran: true,
      storedEvents: 0,
      drainBatches: 0,
    });
  });
});
