import { Client } from 'pg';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { AppProcess, startAppProcess } from '../support/app-process';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';
import { eventually } from '../webhooks/webhook-harness';

const ROBOT = 'example_deal_score';

interface AnswerRow {
  state: string;
  attempts: number;
  error: string | null;
  sent_at: Date | null;
}

/**
 * The server runs as a real child process (the example robot on) and is SIGKILLed between a
 * robot run's commit and its answer, or between Bitrix24 taking the answer and the server
 * recording it; a server restarted on the same database must leave exactly one answer per
 * event_token in Bitrix24 and the answer recorded as sent.
 */
describe('a robot answer whose server is killed with SIGKILL and restarted', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let sql: Client;
  const running: AppProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    emulator = await startEmulator({
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      scope: 'crm,bizproc',
    });
    sql = new Client({ connectionString: database.url });
    await sql.connect();
  });

  afterEach(async () => {
    for (const app of running.splice(0)) await app.kill();
  });

  afterAll(async () => {
    await sql?.end();
    await emulator?.close();
    await database?.drop();
  });

  async function startServer(env: Record<string, string>, port?: number): Promise<AppProcess> {
    const app = await startAppProcess({
      databaseUrl: database.url,
      port,
      env: { BITRIX24_OAUTH_URL: emulator.url, EXAMPLE_HANDLERS: 'true', ...env },
    });
    running.push(app);
    return app;
  }

  async function installOn(app: AppProcess): Promise<CreatedPortal> {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: `${app.url}/bitrix24/events`,
    });
    expect(delivered.status).toBe(200);
    return portal;
  }

  async function answerRow(memberId: string): Promise<AnswerRow | undefined> {
    const { rows } = await sql.query<AnswerRow>(
      `SELECT a.state, a.attempts, a.error, a.sent_at FROM robot_answers a
       JOIN stored_events e ON e.id = a.event_id WHERE e.member_id = $1`,
      [memberId],
    );
    expect(rows.length).toBeLessThanOrEqual(1);
    return rows[0];
  }

  async function answersFor(memberId: string, eventToken: string): Promise<number> {
    const answers = await emulator.control.robotAnswers(memberId);
    return answers.filter((answer) => answer.eventToken === eventToken).length;
  }

  async function sendOutcomes(memberId: string): Promise<string[]> {
    return (await emulator.control.requests(memberId))
      .filter((request) => request.method === 'bizproc.event.send')
      .map((request) => request.outcome);
  }

  /** One more sweep period and a bit: nothing else goes out once the answer is settled. */
  const SWEEP_AND_MARGIN_MS = 6_000;

  it('killed after the run committed, before bizproc.event.send: the restarted server answers exactly once', async () => {
    const server = await startServer({ ROBOT_ANSWER_TEST_PAUSE_AT: 'before-send' });
    const portal = await installOn(server);
    const run = await emulator.control.runRobot(portal.memberId, ROBOT, {
      properties: { amount: 10_000 },
    });
    expect(run.delivered.status).toBe(200);

    await server.waitForLog(/"msg":"robot answer paused at test fault point"/);
    expect(await server.kill()).toMatchObject({ signal: 'SIGKILL' });

    // The run committed with its answer, which never left.
    const { rows: runs } = await sql.query<{ status: string }>(
      `SELECT status FROM stored_events WHERE member_id = $1 AND event_name = $2`,
      [portal.memberId, `ROBOT:${ROBOT.toUpperCase()}`],
    );
    expect(runs).toEqual([{ status: 'processed' }]);
    expect(await answerRow(portal.memberId)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(await sendOutcomes(portal.memberId)).toEqual([]);

    const restarted = await startServer({}, server.port);
    const settled = await eventually(async () => {
      const row = await answerRow(portal.memberId);
      return row?.state === 'sent' ? row : undefined;
    }, 20_000);
    expect(settled).toMatchObject({ state: 'sent', attempts: 1, error: null });
    expect(settled.sent_at).not.toBeNull();
    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, SWEEP_AND_MARGIN_MS));
    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);
    expect(await sendOutcomes(portal.memberId)).toEqual(['ok']);
    expect((await emulator.control.robotAnswers(portal.memberId))[0]).toMatchObject({
      eventToken: run.eventToken,
      returnValues: { score: 80 },
    });
    expect((await restarted.terminate()).code).toBe(0);
  }, 60_000);

  it('killed after Bitrix24 took the answer, before it was recorded as sent: the resend is refused and taken as answered', async () => {
    const server = await startServer({ ROBOT_ANSWER_TEST_PAUSE_AT: 'after-send' });
    const portal = await installOn(server);
    const run = await emulator.control.runRobot(portal.memberId, ROBOT, {
      properties: { amount: 100 },
    });
    expect(run.delivered.status).toBe(200);

    await server.waitForLog(/"msg":"robot answer paused at test fault point"/);
    expect(await server.kill()).toMatchObject({ signal: 'SIGKILL' });

    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);
    expect(await answerRow(portal.memberId)).toMatchObject({ state: 'sending', attempts: 1 });
    // As if the dead sender's 30-second claim had run out, so the restarted sweep takes it over.
    await sql.query(
      `UPDATE robot_answers a SET claimed_until = now() - interval '1 second'
       FROM stored_events e WHERE e.id = a.event_id AND e.member_id = $1`,
      [portal.memberId],
    );

    const restarted = await startServer({}, server.port);
    const settled = await eventually(async () => {
      const row = await answerRow(portal.memberId);
      return row?.state === 'sent' ? row : undefined;
    }, 20_000);
    expect(settled.attempts).toBe(2);
    expect(settled.error).toMatch(/^already answered: .*ACCESS_DENIED/);
    await restarted.waitForLog(/"msg":"robot answer resend refused: taken as already answered"/);

    await new Promise((resolve) => setTimeout(resolve, SWEEP_AND_MARGIN_MS));
    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);
    // One answer taken, one resend refused, and no retry after the refusal.
    expect(await sendOutcomes(portal.memberId)).toEqual(['ok', 'ACCESS_DENIED']);
    expect(await answerRow(portal.memberId)).toMatchObject({ state: 'sent', attempts: 2 });

    const metrics = await (await fetch(`${restarted.url}/metrics`)).text();
    expect(metrics).toMatch(/^robot_answer_attempts_total\{outcome="already_answered"\} 1$/m);
    expect(metrics).not.toMatch(/^robot_answer_attempts_total\{outcome="failed"\}/m);
    expect((await restarted.terminate()).code).toBe(0);
  }, 60_000);
});
