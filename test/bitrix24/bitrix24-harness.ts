import { Client } from 'pg';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import type { PortalRestClient } from '../../src/bitrix24/portal-rest.client';
import { startEmulator, type RateLimit, type RunningEmulator } from '../../src/emulator';
import { TokenVault } from '../../src/portals/token-vault.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestApp } from '../support/test-app';

/** A fresh database and emulator, and as many app instances on them as a test wants. */
export interface Bitrix24Harness {
  database: TestDatabase;
  emulator: RunningEmulator;
  /** The first app instance. */
  app: TestApp;
  /** Every app instance started, for the "no token in any log" check. */
  apps: TestApp[];
  /** Raw SQL on the database: assertions read the tables, not the app's own answers. */
  sql: Client;
  /** Another replica on the same database and emulator. */
  startReplica(env?: Record<string, string>): Promise<TestApp>;
  close(): Promise<void>;
}

export async function startBitrix24Harness(
  options: { env?: Record<string, string>; emulatorRateLimit?: RateLimit } = {},
): Promise<Bitrix24Harness> {
  const database = await createTestDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    rateLimit: options.emulatorRateLimit,
  });
  const apps: TestApp[] = [];
  const startReplica = async (env: Record<string, string> = {}): Promise<TestApp> => {
    const app = await startTestApp({
      databaseUrl: database.url,
      env: { BITRIX24_OAUTH_URL: emulator.url, ...options.env, ...env },
    });
    apps.push(app);
    return app;
  };
  const app = await startReplica();
  const sql = new Client({ connectionString: database.url });
  await sql.connect();
  return {
    database,
    emulator,
    app,
    apps,
    sql,
    startReplica,
    close: async () => {
      await sql.end();
      for (const started of apps) await started.close();
      await emulator.close();
      await database.drop();
    },
  };
}

export function restClient(app: TestApp, memberId: string): PortalRestClient {
  return app.app.get(Bitrix24Client).operationsFor(memberId);
}

export function vaultOf(app: TestApp): TokenVault {
  return app.app.get(TokenVault);
}

/** Every token the emulator ever issued that shows up in some log line of the given apps. */
export async function tokensInLogs(emulator: RunningEmulator, apps: TestApp[]): Promise<string[]> {
  const issued = await emulator.control.tokens();
  const secrets = [...issued.accessTokens, ...issued.refreshTokens, ...issued.applicationTokens];
  const logs = apps.flatMap((app) => app.logs).join('\n');
  return secrets.filter((secret) => logs.includes(secret));
}

export async function portalStatus(sql: Client, memberId: string): Promise<string> {
  const { rows } = await sql.query<{ status: string }>(
    'SELECT status FROM portals WHERE member_id = $1',
    [memberId],
  );
  return rows[0].status;
}
