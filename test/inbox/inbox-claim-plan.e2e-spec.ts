import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { runInOneRoundTrip } from '../../src/database/one-round-trip';
import { claimStatements } from '../../src/inbox/inbox-worker.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { nodesOf, type PlanNode } from '../support/query-plan';
import { startTestApp, TestApp } from '../support/test-app';

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

  async function claimPlan(settings: boolean): Promise<PlanNode[]> {
    type PlanRow = { 'QUERY PLAN': { Plan: PlanNode }[] };
    // The worker's own statements, EXPLAIN before the claim: the settings go with it the same way.
    const [settingsStatement, claim] = claimStatements(32, 30, 8);
    const explained = { sql: `EXPLAIN (FORMAT JSON) ${claim.sql}`, params: claim.params };
    const results = await runInOneRoundTrip(
      dataSource,
      settings ? [settingsStatement, explained] : [explained],
    );
    const [row] = results[results.length - 1] as PlanRow[];
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
    // A pool of one connection: the claim and the look afterwards surely share it.
    const single = await new DataSource(
      dataSourceOptions(database.url, { poolSize: 1 }),
    ).initialize();
    try {
      await runInOneRoundTrip(single, claimStatements(0, 30, 8));
      expect(
        await single.query(
          `SELECT current_setting('enable_seqscan') AS seq, current_setting('enable_bitmapscan') AS bitmap`,
        ),
      ).toEqual([{ seq: 'on', bitmap: 'on' }]);
    } finally {
      await single.destroy();
    }
  });

  it('would not, left to the statistics alone (what the settings are for)', async () => {
    const nodes = await claimPlan(false);
    const walksDueIndex = nodes.some(
      (n) => n['Node Type'] === 'Index Scan' && n['Index Name'] === 'ix_stored_events_due',
    );
    expect(walksDueIndex).toBe(false);
  });
});
