import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { arrangeEvents } from '../admin/admin-fixtures';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import {
  startTestApp,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  type TestApp,
} from '../support/test-app';
import { eventually, postForm } from '../webhooks/webhook-harness';

const ROBOT = 'example_deal_score';
const ROBOT_EVENT = `ROBOT:${ROBOT.toUpperCase()}`;

interface AnswerRow {
  event_id: string;
  state: string;
  attempts: number;
  error: string | null;
}

/** Counter and gauge samples of one /metrics scrape, by their full series name. */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) values.set(match[1], Number(match[2]));
  }
  return values;
}

/**
 * How a robot answer ends when Bitrix24's side is not simple: a lost answer, a refused token,
 * a run on a deal whose own events are stuck; and the answer metrics. The example robot answers.
 */
describe('robot answers: delivery, refusals, ordering and metrics', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let app: TestApp;
  let sql: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    emulator = await startEmulator({
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      scope: 'crm,bizproc',
    });
    app = await startTestApp({
      databaseUrl: database.url,
      env: {
        BITRIX24_OAUTH_URL: emulator.url,
        EXAMPLE_HANDLERS: 'true',
        BITRIX24_REQUEST_TIMEOUT_MS: '1000',
        INBOX_POLL_INTERVAL_MS: '100',
      },
    });
    sql = new Client({ connectionString: database.url });
    await sql.connect();
  });

  afterAll(async () => {
    await sql?.end();
    await app?.close();
    await emulator?.close();
    await database?.drop();
  });

  async function installed(): Promise<CreatedPortal> {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: app.config.eventHandlerUrl,
    });
    if (delivered.status !== 200) throw new Error(`install answered ${delivered.status}`);
    return portal;
  }

  async function answerOf(memberId: string, eventToken: string): Promise<AnswerRow | undefined> {
    const { rows } = await sql.query<AnswerRow>(
      `SELECT a.event_id::text AS event_id, a.state, a.attempts, a.error
       FROM robot_answers a JOIN stored_events e ON e.id = a.event_id
       WHERE e.member_id = $1 AND e.data->>'event_token' = $2`,
      [memberId, eventToken],
    );
    return rows[0];
  }

  function settled(memberId: string, eventToken: string, timeoutMs = 20_000): Promise<AnswerRow> {
    return eventually(async () => {
      const row = await answerOf(memberId, eventToken);
      return row && row.state !== 'pending' && row.state !== 'sending' ? row : undefined;
    }, timeoutMs);
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

  async function scrape(): Promise<Map<string, number>> {
    return samples(await (await fetch(`${app.url}/metrics`)).text());
  }

  const attempts = (metrics: Map<string, number>, outcome: string): number =>
    metrics.get(`robot_answer_attempts_total{outcome="${outcome}"}`) ?? 0;

  it('takes a resend refused after a lost answer as already answered: one answer, no retry loop', async () => {
    const portal = await installed();
    // Bitrix24 takes the answer, but its reply never comes back (the client times out).
    await emulator.control.setFaults(portal.memberId, {
      timeoutRate: 1,
      methods: ['bizproc.event.send'],
    });
    const run = await emulator.control.runRobot(portal.memberId, ROBOT, {
      properties: { amount: 1000 },
    });
    const lost = await eventually(async () => {
      const row = await answerOf(portal.memberId, run.eventToken);
      return row?.state === 'pending' && row.error !== null ? row : undefined;
    }, 10_000);
    expect(lost.error).toContain('may have run on Bitrix24 without an answer');
    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);
    await emulator.control.clearFaults(portal.memberId);

    const answer = await settled(portal.memberId, run.eventToken);
    expect(answer).toMatchObject({ state: 'sent', attempts: 2 });
    expect(answer.error).toMatch(/^already answered: .*ACCESS_DENIED/);
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);
    expect(await sendOutcomes(portal.memberId)).toEqual(['ok', 'ACCESS_DENIED']);
  }, 40_000);

  it('fails, without retrying, an answer refused on its first send (a token Bitrix24 never handed out)', async () => {
    const portal = await installed();
    await emulator.control.runRobot(portal.memberId, ROBOT, { properties: { amount: 10 } });
    const post = (await emulator.control.sent(portal.memberId)).find(
      (sent) => sent.event === ROBOT_EVENT || sent.url.includes('/bitrix24/robots/'),
    );
    if (post === undefined) throw new Error('the robot POST is not in the sent log');
    // The portal's genuine POST (its application token), for a run it never started.
    const form = new URLSearchParams(post.body);
    const unknownToken = 'never|Aunknown|handed.out';
    form.set('event_token', unknownToken);
    expect((await postForm(post.url, form.toString())).status).toBe(200);

    const answer = await settled(portal.memberId, unknownToken);
    expect(answer).toMatchObject({ state: 'failed', attempts: 1 });
    expect(answer.error).toContain('ACCESS_DENIED');
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    expect(await answerOf(portal.memberId, unknownToken)).toMatchObject({ attempts: 1 });
    expect(await answersFor(portal.memberId, unknownToken)).toBe(0);
  }, 40_000);

  it("runs a robot on a deal whose own events are stuck: robot runs are in no object's line", async () => {
    const portal = await installed();
    // Deal 12's update is dead: it holds deal 12's later events until an operator acts.
    await arrangeEvents(app.app.get(DataSource), portal.memberId, 1, {
      data: { FIELDS: { ID: '12' } },
      orderingKey: 'CRMDEAL:12',
      status: 'dead',
      nextAttemptAt: null,
    });
    const run = await emulator.control.runRobot(portal.memberId, ROBOT, {
      documentId: 'DEAL_12',
      properties: { amount: 100 },
    });
    expect(await settled(portal.memberId, run.eventToken)).toMatchObject({ state: 'sent' });
    expect(await answersFor(portal.memberId, run.eventToken)).toBe(1);
    const { rows } = await sql.query<{ ordering_key: string | null; status: string }>(
      `SELECT ordering_key, status FROM stored_events WHERE member_id = $1 AND event_name = $2`,
      [portal.memberId, ROBOT_EVENT],
    );
    expect(rows).toEqual([{ ordering_key: null, status: 'processed' }]);
  });

  it('counts sends by outcome and shows the answers still unsent on /metrics', async () => {
    const before = await scrape();
    const portal = await installed();
    await emulator.control.setFaults(portal.memberId, {
      errorRate: 1,
      methods: ['bizproc.event.send'],
    });
    const run = await emulator.control.runRobot(portal.memberId, ROBOT, {
      properties: { amount: 5 },
    });
    await eventually(async () => {
      const row = await answerOf(portal.memberId, run.eventToken);
      return row?.state === 'pending' && row.error !== null ? row : undefined;
    }, 10_000);
    // The unsent gauges are read from the table at most every 5 s.
    const waiting = await eventually(async () => {
      const metrics = await scrape();
      return (metrics.get('robot_answers_unsent{state="pending"}') ?? 0) >= 1 ? metrics : undefined;
    }, 10_000);
    expect(attempts(waiting, 'retry')).toBeGreaterThan(attempts(before, 'retry'));
    expect(waiting.get('robot_answers_oldest_unsent_age_seconds')).toBeGreaterThan(0);

    await emulator.control.clearFaults(portal.memberId);
    expect(await settled(portal.memberId, run.eventToken)).toMatchObject({ state: 'sent' });
    const after = await eventually(async () => {
      const metrics = await scrape();
      return metrics.get('robot_answers_unsent{state="pending"}') === 0 ? metrics : undefined;
    }, 15_000);
    expect(attempts(after, 'sent')).toBeGreaterThan(attempts(before, 'sent'));
    expect(after.get('robot_answers_unsent{state="sending"}')).toBe(0);
    expect(after.get('robot_answers_oldest_unsent_age_seconds')).toBe(0);
    for (const outcome of ['sent', 'already_answered', 'too_late', 'failed', 'retry']) {
      expect(attempts(after, outcome)).toBeGreaterThanOrEqual(attempts(before, outcome));
    }
  }, 60_000);
});
