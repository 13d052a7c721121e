import { DataSource } from 'typeorm';
import { CLAIM_DUE_SQL, claimScript, claimStatement } from '../../src/inbox/inbox-worker.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

/**
 * A burst makes tens of thousands of events due at once, on a table whose statistics predate it
 * (here: never analyzed). The claim must still walk the due index in order and stop after its
 * limit, not read, check and sort every due row first (a second per claim at 100,000 due rows).
 */
describe('the inbox claim after a burst', () => {
  let database: TestDatabase;
  let app: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startTestApp({
      databaseUrl: database.url,
      env: { INBOX_CONCURRENCY: '0', LOG_LEVEL: 'warn' },
    });
    dataSource = app.app.get(DataSource);
    await dataSource.query(`ALTER TABLE stored_events SET (autovacuum_enabled = false)`);
    await dataSource.query(
      `INSERT INTO stored_events (member_id, source, queue_id, message_id, event_name, ordering_key,
                                  data, additional, bitrix_timestamp, status, next_attempt_at)
       SELECT 'burst-portal', 'offline', n, 'm-' || n, 'ONCRMDEALUPDATE', 'CRMDEAL:' || n,
              '{}'::jsonb, '{}'::jsonb, now(), 'pending', now() - interval '1 second'
       FROM generate_series(1, 30000) AS n`,
    );
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  /** A query string on one pooled connection, as the worker sends its claim: one result each. */
  type RawClient<T> = { query(text: string): Promise<{ rows: T[] }[] | { rows: T[] }> };
  async function onOneConnection<T>(use: (client: RawClient<T>) => Promise<T>): Promise<T> {
    const runner = dataSource.createQueryRunner();
    try {
      return await use((await runner.connect()) as RawClient<T>);
    } finally {
      await runner.release();
    }
  }

  async function claimPlan(settings: boolean): Promise<PlanNode[]> {
    type PlanRow = { 'QUERY PLAN': { Plan: PlanNode }[] };
    if (!settings) {
      const [row]: PlanRow[] = await dataSource.query(
        `EXPLAIN (FORMAT JSON) ${CLAIM_DUE_SQL}`,
        [32, 30, 8],
      );
      return nodesOf(row['QUERY PLAN'][0].Plan);
    }
    // The worker's own string, with EXPLAIN before its claim: the settings go with it the same way.
    const script = claimScript(32, 30, 8).replace(
      claimStatement(32, 30, 8),
      `EXPLAIN (FORMAT JSON) ${claimStatement(32, 30, 8)}`,
    );
    const row = await onOneConnection<PlanRow>(async (client) => {
      const results = (await client.query(script)) as { rows: PlanRow[] }[];
      return results[results.length - 1].rows[0];
    });
    return nodesOf(row['QUERY PLAN'][0].Plan);
  }

  it('walks the due index in order instead of sorting every due row', async () => {
    const nodes = await claimPlan(true);
    expect(nodes.some((n) => n['Node Type'] === 'Bitmap Heap Scan')).toBe(false);
    expect(
      nodes.some(
        (n) => n['Node Type'] === 'Index Scan' && n['Index Name'] === 'ix_stored_events_due',
      ),
    ).toBe(true);
  });

  it('keeps the settings to the claim: the connection goes back to the pool with its defaults', async () => {
    const after = await onOneConnection<{ enable_seqscan: string; enable_bitmapscan: string }>(
      async (client) => {
        await client.query(claimScript(0, 30, 8));
        const shown = (await client.query(
          `SELECT current_setting('enable_seqscan') AS enable_seqscan,
                  current_setting('enable_bitmapscan') AS enable_bitmapscan`,
        )) as { rows: { enable_seqscan: string; enable_bitmapscan: string }[] };
        return shown.rows[0];
      },
    );
    expect(after).toEqual({ enable_seqscan: 'on', enable_bitmapscan: 'on' });
  });

  it('would not, left to the statistics alone (what the settings are for)', async () => {
    const nodes = await claimPlan(false);
    const walksDueIndex = nodes.some(
      (n) => n['Node Type'] === 'Index Scan' && n['Index Name'] === 'ix_stored_events_due',
    );
    expect(walksDueIndex).toBe(false);
  });
});
