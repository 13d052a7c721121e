import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/**
 * Where the test suite's Postgres lives: TEST_DATABASE_URL, else DATABASE_URL, else the embedded
 * server that global-setup started (it exports its URL as TEST_POSTGRES_ADMIN_URL).
 */
export function adminUrl(): string {
  const url =
    process.env.TEST_POSTGRES_ADMIN_URL ??
    process.env.TEST_DATABASE_URL ??
    process.env.DATABASE_URL;
  if (!url) throw new Error('no test Postgres: global-setup did not run');
  return url;
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function adminQuery(sql: string): Promise<void> {
  const client = new Client({ connectionString: withDatabase(adminUrl(), 'postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Name of the migrated template database that global-setup prepares for this run. */
export const TEMPLATE_ENV = 'TEST_TEMPLATE_DATABASE';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * A fresh database for one spec file, copied from the migrated template, so specs never share
 * state and never assume an empty shared database.
 */
export async function createTestDatabase(
  options: { migrated?: boolean } = {},
): Promise<TestDatabase> {
  const name = `b24_test_${randomBytes(6).toString('hex')}`;
  const template = process.env[TEMPLATE_ENV];
  if (options.migrated === false || !template) {
    await adminQuery(`CREATE DATABASE "${name}"`);
  } else {
    await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  }
  return {
    name,
    url: withDatabase(adminUrl(), name),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}
