import qs from 'qs';
import { Client } from 'pg';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { EventBindingService } from '../../src/portals/event-binding.service';
import {
  DirectInstallOptions,
  DirectlyInstalledPortal,
  installPortalDirectly,
} from '../support/portal-fixtures';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestApp } from '../support/test-app';

/** A fresh database and emulator; apps (in-process or child processes) are started by each spec. */
export interface DrainHarness {
  database: TestDatabase;
  emulator: RunningEmulator;
  /** Raw SQL: assertions read the tables, not the app's own answers. */
  sql: Client;
  startApp(env?: Record<string, string>): Promise<TestApp>;
  close(): Promise<void>;
}

export async function startDrainHarness(): Promise<DrainHarness> {
  const database = await createTestDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
  });
  const sql = new Client({ connectionString: database.url });
  await sql.connect();
  const apps: TestApp[] = [];
  return {
    database,
    emulator,
    sql,
    startApp: async (env = {}) => {
      const app = await startTestApp({
        databaseUrl: database.url,
        env: { BITRIX24_OAUTH_URL: emulator.url, ...env },
      });
      apps.push(app);
      return app;
    },
    close: async () => {
      await sql.end();
      for (const app of apps) await app.close();
      await emulator.close();
      await database.drop();
    },
  };
}

/**
 * An installed, active portal whose configured events are bound (Bitrix24 queues offline rows only
 * for events an app has bound with event_type=offline), with ONOFFLINEEVENT pointing at `app`.
 */
export async function installBoundPortal(
  h: DrainHarness,
  app: TestApp,
  options: DirectInstallOptions = {},
): Promise<DirectlyInstalledPortal> {
  const portal = await installPortalDirectly(h.emulator, app, options);
  await app.app.get(EventBindingService).bind(portal.memberId);
  return portal;
}

/** What Bitrix24 POSTs when offline events were written: form-encoded, empty data omitted. */
export async function notifyOfflineEvent(appUrl: string, portal: CreatedPortal): Promise<number> {
  const body = qs.stringify(
    {
      event: 'ONOFFLINEEVENT',
      event_handler_id: '7',
      ts: String(Math.floor(Date.now() / 1000)),
      auth: {
        domain: portal.domain,
        client_endpoint: portal.clientEndpoint,
        server_endpoint: 'https://oauth.bitrix.info/rest/',
        member_id: portal.memberId,
        application_token: portal.applicationToken,
      },
    },
    { format: 'RFC1738' },
  );
  const response = await fetch(`${appUrl}/bitrix24/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  await response.arrayBuffer();
  return response.status;
}

export interface StoredCounts {
  rows: number;
  distinctQueueIds: number;
}

export async function storedCounts(sql: Client, memberId: string): Promise<StoredCounts> {
  const { rows } = await sql.query<{ rows: string; distinct_queue_ids: string }>(
    `SELECT count(*) AS rows, count(DISTINCT queue_id) AS distinct_queue_ids
     FROM stored_events WHERE member_id = $1 AND source = 'offline'`,
    [memberId],
  );
  return { rows: Number(rows[0].rows), distinctQueueIds: Number(rows[0].distinct_queue_ids) };
}

export { eventually } from '../support/eventually';

/** Log lines (pino JSON) of an app that mention the portal and carry the message. */
export function logLines(logs: readonly string[], memberId: string, message: string): string[] {
  return logs.filter(
    (line) => line.includes(`"memberId":"${memberId}"`) && line.includes(`"msg":"${message}`),
  );
}

/**
 * Runs `work` while a BEFORE INSERT trigger on `table` executes `body` (PL/pgSQL, ending in
 * `RETURN NEW`) for every row: the way these tests make Postgres refuse chosen writes.
 */
export async function withInsertTrigger<T>(
  sql: Client,
  trigger: { name: string; table: string; body: string },
  work: () => Promise<T>,
): Promise<T> {
  await sql.query(`
    CREATE FUNCTION ${trigger.name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${trigger.body}
    END $$;
    CREATE TRIGGER ${trigger.name} BEFORE INSERT ON ${trigger.table}
      FOR EACH ROW EXECUTE FUNCTION ${trigger.name}();`);
  try {
    return await work();
  } finally {
    await sql.query(`DROP TRIGGER ${trigger.name} ON ${trigger.table};
      DROP FUNCTION ${trigger.name}();`);
  }
}
