import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { runInOneRoundTrip, type Statement } from '../../src/database/one-round-trip';
import { createTestDatabase, TestDatabase } from '../support/postgres';

/**
 * Values written into the statement read back exactly as the same values sent as parameters, for
 * every kind the inbox sends (arrays of ids, texts with quotes, commas, backslashes and NULLs,
 * booleans, floats, JSON with the same, dates), and the statements run as one transaction.
 */
describe('statements in one round trip', () => {
  let database: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = await new DataSource(
      dataSourceOptions(database.url, { poolSize: 2 }),
    ).initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  const awkward = [
    "it's",
    'a,b',
    null,
    'back\\slash',
    '"quoted"',
    '{braces}',
    'line\nbreak',
    'ünïcödé ✓',
    '',
    'NULL',
    '$1 and $2',
  ];

  it('reads every value back as a parameterized statement would', async () => {
    const statement: Statement = {
      sql: `SELECT $1::bigint[] AS ids, $2::text[] AS texts, $3::boolean[] AS flags,
                   $4::float8[] AS floats, $5::jsonb AS json, $6::timestamptz AS at,
                   $7::int AS n, $8::text AS nothing`,
      params: [
        ['1', '9007199254740993'],
        awkward,
        [true, false, null],
        [1.5, null, 0.1],
        JSON.stringify({ error: awkward, nested: { quote: 'can\'t \\ "' } }),
        new Date('2026-12-04T21:43:00.123Z'),
        30,
        null,
      ],
    };
    const [[written]] = await runInOneRoundTrip(dataSource, [statement]);
    const [parameterized]: unknown[] = await dataSource.query(statement.sql, [...statement.params]);
    expect(written).toEqual(parameterized);
    expect((written as { texts: unknown }).texts).toEqual(awkward);
  });

  it('answers each statement in order, and runs them all or none', async () => {
    await dataSource.query(`CREATE TABLE round_trip_probe (id int PRIMARY KEY)`);
    const answers = await runInOneRoundTrip(dataSource, [
      { sql: `INSERT INTO round_trip_probe VALUES ($1), ($2) RETURNING id`, params: [1, 2] },
      { sql: `SELECT count(*)::int AS n FROM round_trip_probe`, params: [] },
    ]);
    expect(answers).toEqual([[{ id: 1 }, { id: 2 }], [{ n: 2 }]]);

    await expect(
      runInOneRoundTrip(dataSource, [
        { sql: `INSERT INTO round_trip_probe VALUES ($1)`, params: [3] },
        { sql: `INSERT INTO round_trip_probe VALUES ($1)`, params: [1] },
      ]),
    ).rejects.toThrow(/duplicate key/);
    const [{ n }]: { n: number }[] = await dataSource.query(
      `SELECT count(*)::int AS n FROM round_trip_probe`,
    );
    expect(n).toBe(2);
    // The connection went back to the pool usable, not inside a failed transaction.
    const [again] = await runInOneRoundTrip(dataSource, [{ sql: 'SELECT 1 AS one', params: [] }]);
    expect(again).toEqual([{ one: 1 }]);
  });
});
