import { DataSource } from 'typeorm';
import { CLAIM_DUE_SQL, CLAIM_PLANNER_SETTINGS_SQL } from '../../src/inbox/inbox-worker.service';
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

  async function claimPlan(settings: boolean): Promise<PlanNode[]> {
    return dataSource.transaction(async (manager) => {
      if (settings) await manager.query(CLAIM_PLANNER_SETTINGS_SQL);
      const [row]: { 'QUERY PLAN': { Plan: PlanNode }[] }[] = await manager.query(
        `EXPLAIN (FORMAT JSON) ${CLAIM_DUE_SQL}`,
        [32, 30, 8],
      );
      return nodesOf(row['QUERY PLAN'][0].Plan);
    });
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

  it('would not, left to the statistics alone (what the settings are for)', async () => {
    const nodes = await claimPlan(false);
    const walksDueIndex = nodes.some(
      (n) => n['Node Type'] === 'Index Scan' && n['Index Name'] === 'ix_stored_events_due',
    );
    expect(walksDueIndex).toBe(false);
  });
});
