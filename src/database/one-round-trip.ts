import { escapeLiteral } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';

/** A statement with its positional parameters ($1, $2, …). */
export interface Statement {
  sql: string;
  params: readonly unknown[];
}

/** Runs one statement through TypeORM, in the manager's transaction when it has one. */
export function runStatement(manager: EntityManager, statement: Statement): Promise<unknown> {
  return manager.query(statement.sql, [...statement.params]);
}

/** pg's own serializer of parameters (arrays, dates, JSON), so a written-in value reads the same. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require('pg/lib/utils') as {
  prepareValue(value: unknown): string | Buffer | null | undefined;
};

/**
 * The statement with each parameter written in as a quoted literal, in the text form pg would
 * have sent it in (so `$1::bigint[]` reads `'{1,2}'::bigint[]`), NULL for null. The SQL around the
 * placeholders is ours and holds no `$` of its own; values only ever reach it through escapeLiteral.
 */
export function withParametersWritten(statement: Statement): string {
  return statement.sql.replace(/\$(\d+)\b/g, (_, position: string) => {
    const index = Number(position) - 1;
    if (index >= statement.params.length) {
      throw new Error(
        `statement refers to $${position} but has ${statement.params.length} parameters`,
      );
    }
    const value = prepareValue(statement.params[index]);
    if (value === null || value === undefined) return 'NULL';
    // Binary values (bytea) have no safe text form here; nothing on these paths sends one.
    if (typeof value !== 'string')
      throw new Error(`$${position} is binary: send it as a parameter`);
    return escapeLiteral(value);
  });
}

/**
 * Runs the statements, in order, as one simple-protocol query string: Postgres runs them in one
 * implicit transaction (all or nothing) and answers in one round trip, where a TypeORM
 * transaction costs one round trip for each statement plus BEGIN and COMMIT. Worth it on hot
 * paths that run one at a time while the server and Postgres are busy: each round trip then waits
 * its turn. Answers each statement's rows, in order.
 */
export async function runInOneRoundTrip(
  dataSource: DataSource,
  statements: readonly Statement[],
): Promise<unknown[][]> {
  if (statements.length === 0) return [];
  const runner = dataSource.createQueryRunner();
  try {
    // QueryRunner.connect() hands out the pooled pg client itself, which answers one result per
    // statement of a multi-statement string (TypeORM's query() keeps only a single one).
    const client = (await runner.connect()) as {
      query(text: string): Promise<{ rows: unknown[] } | { rows: unknown[] }[]>;
    };
    const answer = await client.query(statements.map(withParametersWritten).join(';\n'));
    const results = Array.isArray(answer) ? answer : [answer];
    return results.map((result) => result.rows);
  } finally {
    await runner.release();
  }
}
