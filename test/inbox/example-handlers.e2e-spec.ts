import { DataSource } from 'typeorm';
import { InboxService } from '../../src/inbox/inbox.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';

/** How the event ended (processed, or unhandled with no handler) and the handlers that ran. */
async function runOf(
  app: TestApp,
  dedupKey: string,
): Promise<{ status: string; handlers: string[] }> {
  const inbox = app.app.get(InboxService);
  const dataSource = app.app.get(DataSource);
  await inbox.storeOnlineEvent({
    memberId: 'example-portal',
    eventName: 'ONCRMDEALUPDATE',
    data: { FIELDS: { ID: '42' } },
    bitrixTimestamp: null,
    dedupKey,
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const rows: { status: string; handlers: string[] | null }[] = await dataSource.query(
      `SELECT e.status, a.handlers FROM stored_events e
       LEFT JOIN event_attempts a ON a.event_id = e.id WHERE e.dedup_key = $1`,
      [dedupKey],
    );
    const status = rows[0]?.status;
    if (status === 'processed' || status === 'unhandled') {
      return { status, handlers: rows[0].handlers ?? [] };
    }
    if (Date.now() > deadline) throw new Error(`event not handled: ${JSON.stringify(rows)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the example handler module', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('is off by default: a deal change finds no handler and is left unhandled', async () => {
    const app = await startTestApp({ databaseUrl: database.url });
    try {
      expect(await runOf(app, 'example-off')).toEqual({ status: 'unhandled', handlers: [] });
    } finally {
      await app.close();
    }
  });

  it('handles deal changes when EXAMPLE_HANDLERS=true', async () => {
    const app = await startTestApp({
      databaseUrl: database.url,
      env: { EXAMPLE_HANDLERS: 'true' },
    });
    try {
      const run = await runOf(app, 'example-on');
      expect(run.status).toBe('processed');
      expect(run.handlers.sort()).toEqual([
        'DealChangeLogHandler.onDealChange',
        'DealCopyHandler.copyDeal',
      ]);
      expect(app.logs.some((line) => line.includes('"msg":"deal changed"'))).toBe(true);
    } finally {
      await app.close();
    }
  });
});
