import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { RETIRE_EVENTS } from '../../src/retention/retention.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { nodesOf, type PlanNode } from '../support/query-plan';

/**
 * Retention's walk over the events must follow the finished index in order and stop after its
 * batch, whatever status a finished event has (processed, discarded, unhandled): an index whose
 * predicate left one of them out would have every old event read and sorted on each batch.
 */
describe('the retention walk over finished events', () => {
  let database: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = new DataSource(dataSourceOptions(database.url, { poolSize: 1 }));
    await dataSource.initialize();
    await dataSource.query(
      `INSERT INTO stored_events (member_id, source, event_name, data, status, received_at,
                                  processed_at)
       SELECT 'plan-portal-' || (n % 100), 'online', 'ONCRMDEALUPDATE', '{}'::jsonb,
              (ARRAY['processed','unhandled','discarded','dead'])[1 + n % 4],
              now() - make_interval(secs => n * 60),
              CASE WHEN n % 4 = 0 THEN now() - make_interval(secs => n * 60) END
       FROM generate_series(1, 40000) AS n`,
    );
    await dataSource.query('ANALYZE stored_events');
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('walks the finished index in order instead of sorting every old event', async () => {
    type PlanRow = { 'QUERY PLAN': { Plan: PlanNode }[] };
    const nodes = await dataSource.transaction(async (manager) => {
      const [row]: PlanRow[] = await manager.query(`EXPLAIN (FORMAT JSON) ${RETIRE_EVENTS}`, [
        new Date(Date.now() - 86_400_000),
        500,
        '-infinity',
        '0',
      ]);
      return nodesOf(row['QUERY PLAN'][0].Plan);
    });
    const scans = nodes.filter((n) => n['Node Type'].includes('Scan') && n['Index Name']);
    expect(scans.map((n) => n['Index Name'])).toContain('ix_stored_events_finished');
    // The one sort allowed is of the batch's deleted rows (where the walk resumes), after the walk.
    const lockRows = nodes.find((n) => n['Node Type'] === 'LockRows');
    expect(lockRows).toBeDefined();
    expect(nodesOf(lockRows as PlanNode).some((n) => n['Node Type'] === 'Sort')).toBe(false);
  });
});
