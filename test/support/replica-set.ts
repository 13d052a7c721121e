import { Client } from 'pg';
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator';
import { AppProcess, startAppProcess } from './app-process';
import { createTestDatabase, TestDatabase } from './postgres';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from './test-app';

/** Server processes on one database and one emulator, as replicas behind a load balancer. */
export interface ReplicaSet {
  database: TestDatabase;
  emulator: RunningEmulator;
  /** Raw SQL on the shared database. */
  sql: Client;
  replicas: AppProcess[];
  close(): Promise<void>;
}

export async function startReplicaSet(
  count: number,
  options: {
    env?: Record<string, string>;
    emulator?: Omit<EmulatorOptions, 'clientId' | 'clientSecret'>;
  } = {},
): Promise<ReplicaSet> {
  const database = await createTestDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    ...options.emulator,
  });
  const sql = new Client({ connectionString: database.url });
  await sql.connect();
  const replicas = await Promise.all(
    Array.from({ length: count }, () =>
      startAppProcess({
        databaseUrl: database.url,
        env: { BITRIX24_OAUTH_URL: emulator.url, ...options.env },
      }),
    ),
  );
  return {
    database,
    emulator,
    sql,
    replicas,
    close: async () => {
      for (const replica of replicas) await replica.kill();
      await sql.end();
      await emulator.close();
      await database.drop();
    },
  };
}
