import type { EmbeddedDatabase } from '../../src/database/embedded-postgres';
import { adminQuery, TEMPLATE_ENV } from './postgres';

export default async function globalTeardown(): Promise<void> {
  const template = process.env[TEMPLATE_ENV];
  if (template) await adminQuery(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
  const embedded = (globalThis as { __embeddedPostgres?: EmbeddedDatabase }).__embeddedPostgres;
  await embedded?.stop();
}
