import { Client } from 'pg';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import {
  startTestApp,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  type TestApp,
} from '../support/test-app';
import { eventually } from '../webhooks/webhook-harness';

/** EXAMPLE_HANDLERS=true shows the whole robot flow against the emulator. */
describe('the example robot', () => {
  let database: TestDatabase;
  let app: TestApp;
  let sql: Client;

  async function start(scope: string): Promise<RunningEmulator> {
    const emulator = await startEmulator({
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      scope,
    });
    app = await startTestApp({
      databaseUrl: database.url,
      env: { BITRIX24_OAUTH_URL: emulator.url, EXAMPLE_HANDLERS: 'true' },
    });
    return emulator;
  }

  async function install(emulator: RunningEmulator): Promise<CreatedPortal> {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: app.config.eventHandlerUrl,
    });
    expect(delivered.status).toBe(200);
    return portal;
  }

  beforeEach(async () => {
    database = await createTestDatabase();
    sql = new Client({ connectionString: database.url });
    await sql.connect();
  });

  afterEach(async () => {
    await sql.end();
    await app?.close();
    await database.drop();
  });

  it('is registered at install, runs when a deal reaches its stage, and answers its score', async () => {
    const emulator = await start('crm,bizproc');
    try {
      const portal = await install(emulator);
      const [robot] = await emulator.control.robots(portal.memberId);
      expect(robot).toMatchObject({
        code: 'example_deal_score',
        handler: `${app.url}/bitrix24/robots/example_deal_score`,
        useSubscription: 'Y',
      });
      const run = await emulator.control.runRobot(portal.memberId, 'example_deal_score', {
        properties: { amount: 10_000, priority: 'high' },
      });
      expect(run.delivered.status).toBe(200);
      const [answer] = await eventually(async () => {
        const answers = await emulator.control.robotAnswers(portal.memberId);
        return answers.length > 0 ? answers : undefined;
      }, 15_000);
      expect(answer).toMatchObject({
        eventToken: run.eventToken,
        returnValues: { score: 90 },
        logMessage: 'Scored 90',
      });
    } finally {
      await emulator.close();
    }
  });

  it('leaves the install working on a portal that did not grant the bizproc scope', async () => {
    const emulator = await start('crm');
    try {
      const portal = await install(emulator);
      const { rows } = await sql.query<{ status: string }>(
        'SELECT status FROM portals WHERE member_id = $1',
        [portal.memberId],
      );
      expect(rows[0]?.status).toBe('active');
      expect(await emulator.control.robots(portal.memberId)).toEqual([]);
    } finally {
      await emulator.close();
    }
  });
});
