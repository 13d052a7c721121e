import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { runPendingMigrations } from '../../src/database/migrate';
import { createPinoLogger } from '../../src/logging/app-logger';
import { adminQuery, TEMPLATE_ENV, withDatabase } from './postgres';

async function reachable(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * Provides the suite's Postgres: TEST_DATABASE_URL / DATABASE_URL when set, else an embedded
 * server in a temporary directory. Then migrates a template database once per run; each spec
 * copies it (see createTestDatabase).
 */
export default async function globalSetup(): Promise<void> {
  const configured = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  let url = configured;
  if (!url || !(await reachable(url))) {
    if (configured) throw new Error(`test database ${configured} is not reachable`);
    const dataDir = mkdtempSync(path.join(tmpdir(), 'b24-test-pg-'));
    const embedded = await startEmbeddedPostgres(dataDir, createPinoLogger('warn'));
    (globalThis as { __embeddedPostgres?: unknown }).__embeddedPostgres = embedded;
    url = embedded.url;
  }
  process.env.TEST_POSTGRES_ADMIN_URL = url;

  const template = `b24_template_${process.pid}`;
  await adminQuery(`DROP DATABASE IF EXISTS "${template}"`);
  await adminQuery(`CREATE DATABASE "${template}"`);
  await runPendingMigrations(withDatabase(url, template));
  process.env[TEMPLATE_ENV] = template;
}
