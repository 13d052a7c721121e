import { DataSource } from 'typeorm';
import { InboxService } from '../../src/inbox/inbox.service';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';

async function handlersRunFor(app: TestApp, dedupKey: string): Promise<string[]> {
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
    if (rows[0]?.status === 'processed') return rows[0].handlers ?? [];
    if (Date.now() > deadline) throw new Error(`event not processed: ${JSON.stringify(rows)}`);
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

  it('is off by default: a deal change is processed with no handler', async () => {
    const app = await startTestApp({ databaseUrl: database.url });
    try {
      expect(await handlersRunFor(app, 'example-off')).toEqual([]);
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
      expect((await handlersRunFor(app, 'example-on')).sort()).toEqual([
        'DealChangeLogHandler.onDealChange',
        'DealCopyHandler.copyDeal',
      ]);
      expect(app.logs.some((line) => line.includes('"msg":"deal changed"'))).toBe(true);
    } finally {
      await app.close();
    }
  });
});
