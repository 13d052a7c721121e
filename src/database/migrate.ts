import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source-options';

/** Any constant: the key of the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK_KEY = 7_240_311_001;

/** Applies pending migrations; replicas starting together take turns under an advisory lock. */
export async function runPendingMigrations(url: string): Promise<string[]> {
  const dataSource = new DataSource(dataSourceOptions(url, { poolSize: 1 }));
  await dataSource.initialize();
  try {
    await dataSource.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await dataSource.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await dataSource.destroy();
  }
}
