import { Injectable, Module } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { InboxService } from '../../src/inbox/inbox.service';
import { AppLogger } from '../../src/logging/app-logger';
import { EventBindingService } from '../../src/portals/event-binding.service';
import {
  Bitrix24Robot,
  type RobotAnswer,
  type RobotDeclaration,
  type RobotRun,
} from '../../src/robots/bitrix24-robot.decorator';
import { RobotAnswers } from '../../src/robots/robot-answers.service';
import type { RobotRegistry } from '../../src/robots/robot-registry.service';
import { RobotSync } from '../../src/robots/robot-sync.service';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import {
  startTestApp,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  type TestApp,
} from '../support/test-app';
import { eventually, postForm } from '../webhooks/webhook-harness';

const SEND_INVOICE: RobotDeclaration = {
  code: 'send_invoice',
  name: { en: 'Send the invoice', de: 'Rechnung senden' },
  useSubscription: true,
  properties: {
    amount: { name: 'Amount', type: 'double', required: true },
    channel: {
      name: 'Channel',
      type: 'select',
      options: { mail: 'E-mail', sms: 'SMS' },
      default: 'mail',
    },
  },
  returnProperties: { invoiceId: { name: 'Invoice', type: 'string' } },
};

const NOTE_ONLY: RobotDeclaration = {
  code: 'note_only',
  name: 'Leave a note',
  useSubscription: false,
  properties: { note: { name: 'Note', type: 'text' } },
};

/** The vendor's robots, scripted by the test: a document's first `failures` runs throw. */
@Injectable()
class InvoiceRobots {
  readonly runs: RobotRun[] = [];
  readonly failures = new Map<string, number>();
  readonly delays = new Map<string, number>();

  @Bitrix24Robot(SEND_INVOICE)
  async sendInvoice(run: RobotRun): Promise<RobotAnswer> {
    this.runs.push(run);
    const document = run.documentId[2];
    const remaining = this.failures.get(document) ?? 0;
    if (remaining > 0) {
      this.failures.set(document, remaining - 1);
      throw new Error(`billing system unavailable for ${document}`);
    }
    await new Promise((resolve) => setTimeout(resolve, this.delays.get(document) ?? 0));
    return { returnValues: { invoiceId: `INV-${document}` }, logMessage: 'invoice sent' };
  }

  @Bitrix24Robot(NOTE_ONLY)
  noteOnly(run: RobotRun): RobotAnswer {
    this.runs.push(run);
    return { returnValues: { ignored: true } };
  }
}

@Module({ providers: [InvoiceRobots] })
class InvoiceRobotsModule {}

describe('robots: declared in code, installed once, each run handled and answered once', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let app: TestApp;
  let sql: Client;
  let robots: InvoiceRobots;

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
        INBOX_RETRY_BASE_SECONDS: '1',
        INBOX_POLL_INTERVAL_MS: '100',
      },
      vendorModules: [InvoiceRobotsModule],
    });
    sql = new Client({ connectionString: database.url });
    await sql.connect();
    robots = app.app.get(InvoiceRobots);
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

  async function restCalls(memberId: string, method: string): Promise<number> {
    return (await emulator.control.stats(memberId)).restCalls[method] ?? 0;
  }

  function syncWith(declarations: RobotDeclaration[]): RobotSync {
    const registry = { declarations: () => declarations } as unknown as RobotRegistry;
    // A binding service of its own, so this sync does not also join the app's install flow.
    const unusedFlow = { addStep: () => undefined } as unknown as EventBindingService;
    return new RobotSync(
      app.app.get(DataSource),
      app.app.get(Bitrix24Client),
      app.config,
      registry,
      unusedFlow,
      app.app.get(AppLogger),
    );
  }

  async function storedRuns(
    memberId: string,
  ): Promise<{ id: string; status: string; attempts: number }[]> {
    const { rows } = await sql.query<{ id: string; status: string; attempts: number }>(
      `SELECT id::text AS id, status, attempts FROM stored_events
       WHERE member_id = $1 AND event_name LIKE 'ROBOT:%' ORDER BY id`,
      [memberId],
    );
    return rows;
  }

  async function answerState(eventId: string): Promise<string | undefined> {
    const { rows } = await sql.query<{ state: string }>(
      'SELECT state FROM robot_answers WHERE event_id = $1',
      [eventId],
    );
    return rows[0]?.state;
  }

  async function settledAnswer(eventId: string): Promise<string> {
    return eventually(async () => {
      const state = await answerState(eventId);
      return state === 'pending' || state === 'sending' ? undefined : state;
    }, 20_000);
  }

  it('installs each robot once across repeated installs, rebinds and an app update', async () => {
    const portal = await installed();
    const handler = `${app.url}/bitrix24/robots/send_invoice`;
    const registered = await emulator.control.robots(portal.memberId);
    expect(registered.map((robot) => robot.code).sort()).toEqual(['note_only', 'send_invoice']);
    expect(registered.find((robot) => robot.code === 'send_invoice')).toMatchObject({
      handler,
      useSubscription: 'Y',
      name: { en: 'Send the invoice', de: 'Rechnung senden' },
      properties: {
        amount: { NAME: 'Amount', TYPE: 'double', REQUIRED: 'Y', MULTIPLE: 'N' },
        channel: {
          NAME: 'Channel',
          TYPE: 'select',
          OPTIONS: { mail: 'E-mail', sms: 'SMS' },
          DEFAULT: 'mail',
        },
      },
      returnProperties: { invoiceId: { NAME: 'Invoice', TYPE: 'string' } },
    });

    const bindings = app.app.get(EventBindingService);
    await bindings.bind(portal.memberId);
    await bindings.bind(portal.memberId);
    expect(await restCalls(portal.memberId, 'bizproc.robot.add')).toBe(2);
    expect(await restCalls(portal.memberId, 'bizproc.robot.update')).toBe(0);
    expect(await restCalls(portal.memberId, 'bizproc.robot.delete')).toBe(0);

    // An update takes the robots off the portal's list; ONAPPUPDATE registers them again.
    const update = await emulator.control.publishVersion(portal.memberId);
    expect(update.delivered.map((sent) => sent.status)).toEqual([200]);
    expect(
      (await emulator.control.robots(portal.memberId)).map((robot) => robot.code).sort(),
    ).toEqual(['note_only', 'send_invoice']);
    expect(await restCalls(portal.memberId, 'bizproc.robot.add')).toBe(4);
  });

  it('updates a robot whose declaration changed and deletes one no longer declared', async () => {
    const portal = await installed();
    const changed: RobotDeclaration = {
      ...SEND_INVOICE,
      properties: {
        ...SEND_INVOICE.properties,
        dueDays: { name: 'Due in days', type: 'int', default: 14 },
      },
    };
    expect(await syncWith([changed]).sync(portal.memberId)).toEqual({
      added: [],
      updated: ['send_invoice'],
      unchanged: [],
      deleted: ['note_only'],
    });
    const [robot, ...others] = await emulator.control.robots(portal.memberId);
    expect(others).toEqual([]);
    expect(robot.code).toBe('send_invoice');
    expect(Object.keys(robot.properties).sort()).toEqual(['amount', 'channel', 'dueDays']);
    expect(await syncWith([changed]).sync(portal.memberId)).toEqual({
      added: [],
      updated: [],
      unchanged: ['send_invoice'],
      deleted: [],
    });
  });

  it('runs the handler once and answers once for a robot POST delivered three times', async () => {
    const portal = await installed();
    const run = await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      documentId: 'DEAL_31',
      properties: { amount: 99.5 },
    });
    expect(run.delivered).toMatchObject({
      status: 200,
      body: JSON.stringify({ outcome: 'stored' }),
    });
    const sent = (await emulator.control.sent(portal.memberId)).find((post) =>
      post.event.startsWith('ROBOT:'),
    );
    if (sent === undefined) throw new Error('the robot POST is not in the sent log');
    for (let again = 0; again < 2; again++) {
      const response = await postForm(sent.url, sent.body);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ outcome: 'duplicate' });
    }

    const [stored, ...more] = await storedRuns(portal.memberId);
    expect(more).toEqual([]);
    expect(await settledAnswer(stored.id)).toBe('sent');
    const runs = robots.runs.filter((seen) => seen.eventToken === run.eventToken);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      memberId: portal.memberId,
      code: 'send_invoice',
      documentId: ['crm', 'CCrmDocumentDeal', 'DEAL_31'],
      documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'],
      properties: { amount: '99.5', channel: 'mail' },
      useSubscription: true,
      timeoutDuration: 0,
    });
    expect(await emulator.control.robotAnswers(portal.memberId)).toEqual([
      expect.objectContaining({
        eventToken: run.eventToken,
        returnValues: { invoiceId: 'INV-DEAL_31' },
        logMessage: 'invoice sent',
      }),
    ]);

    // A replay runs the handler again, but the run was answered: no second answer goes out.
    await app.app.get(InboxService).replay(stored.id);
    expect(robots.runs.filter((seen) => seen.eventToken === run.eventToken)).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await restCalls(portal.memberId, 'bizproc.event.send')).toBe(1);
    expect(await emulator.control.robotAnswers(portal.memberId)).toHaveLength(1);
  });

  it('answers once when the handler throws twice before it succeeds', async () => {
    const portal = await installed();
    robots.failures.set('DEAL_32', 2);
    const run = await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      documentId: 'DEAL_32',
      properties: { amount: 1 },
    });
    const [stored] = await storedRuns(portal.memberId);
    expect(await settledAnswer(stored.id)).toBe('sent');
    expect((await storedRuns(portal.memberId))[0]).toMatchObject({
      status: 'processed',
      attempts: 3,
    });
    expect(robots.runs.filter((seen) => seen.eventToken === run.eventToken)).toHaveLength(3);
    expect(await restCalls(portal.memberId, 'bizproc.event.send')).toBe(1);
    expect(await emulator.control.robotAnswers(portal.memberId)).toEqual([
      expect.objectContaining({
        eventToken: run.eventToken,
        returnValues: { invoiceId: 'INV-DEAL_32' },
      }),
    ]);
  });

  it('sends an answer left unsent (refused by a 5xx, then its sender gone) once, from the sweep', async () => {
    const portal = await installed();
    await emulator.control.setFaults(portal.memberId, {
      errorRate: 1,
      methods: ['bizproc.event.send'],
    });
    const run = await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      documentId: 'DEAL_34',
      properties: { amount: 1 },
    });
    const [stored] = await eventually(async () => {
      const runs = await storedRuns(portal.memberId);
      return runs.length > 0 ? runs : undefined;
    });
    await eventually(async () => {
      const { rows } = await sql.query<{ state: string; error: string | null }>(
        'SELECT state, error FROM robot_answers WHERE event_id = $1',
        [stored.id],
      );
      return rows[0]?.state === 'pending' && rows[0].error !== null ? rows[0] : undefined;
    }, 10_000);
    // As if the replica sending it died mid-send: its claim lapsed, the answer is still unsent.
    await sql.query(
      `UPDATE robot_answers SET state = 'sending', claimed_until = now() - interval '1 second'
       WHERE event_id = $1`,
      [stored.id],
    );
    await emulator.control.clearFaults(portal.memberId);
    expect(await settledAnswer(stored.id)).toBe('sent');
    expect(await emulator.control.robotAnswers(portal.memberId)).toEqual([
      expect.objectContaining({ eventToken: run.eventToken }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    expect(await emulator.control.robotAnswers(portal.memberId)).toHaveLength(1);
  }, 30_000);

  it('lets only one of several concurrent senders (replicas) send an answer', async () => {
    const portal = await installed();
    await emulator.control.setFaults(portal.memberId, {
      errorRate: 1,
      methods: ['bizproc.event.send'],
    });
    await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      documentId: 'DEAL_35',
      properties: { amount: 1 },
    });
    const [stored] = await eventually(async () => {
      const runs = await storedRuns(portal.memberId);
      return runs.length > 0 ? runs : undefined;
    });
    await eventually(async () => ((await answerState(stored.id)) === 'pending' ? true : undefined));
    await emulator.control.clearFaults(portal.memberId);
    const answers = app.app.get(RobotAnswers);
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => answers.send(stored.id)));
    expect(outcomes.filter((outcome) => outcome !== null).length).toBeLessThanOrEqual(1);
    expect(await settledAnswer(stored.id)).toBe('sent');
    expect(await emulator.control.robotAnswers(portal.memberId)).toHaveLength(1);
    const sends = (await emulator.control.requests(portal.memberId)).filter(
      (request) => request.method === 'bizproc.event.send' && request.outcome === 'ok',
    );
    expect(sends).toHaveLength(1);
  });

  it('records "too late" instead of answering after the robot stopped waiting', async () => {
    const portal = await installed();
    robots.delays.set('DEAL_33', 2100);
    await emulator.control.runRobot(portal.memberId, 'send_invoice', {
      documentId: 'DEAL_33',
      properties: { amount: 1 },
      timeoutDuration: 1,
    });
    const [stored] = await eventually(async () => {
      const runs = await storedRuns(portal.memberId);
      return runs.length > 0 ? runs : undefined;
    });
    expect(await settledAnswer(stored.id)).toBe('too_late');
    expect(await restCalls(portal.memberId, 'bizproc.event.send')).toBe(0);
  });

  it('sends no answer for a robot that does not wait for one', async () => {
    const portal = await installed();
    const run = await emulator.control.runRobot(portal.memberId, 'note_only', {
      properties: { note: 'hello' },
    });
    const [stored] = await storedRuns(portal.memberId);
    await eventually(async () => {
      const [row] = await storedRuns(portal.memberId);
      return row.status === 'processed' ? row : undefined;
    }, 10_000);
    expect(robots.runs.filter((seen) => seen.eventToken === run.eventToken)).toHaveLength(1);
    expect(await answerState(stored.id)).toBeUndefined();
    expect(await restCalls(portal.memberId, 'bizproc.event.send')).toBe(0);
  });

  it('stores nothing for a forged robot POST (wrong application token)', async () => {
    const portal = await installed();
    const before = await sql.query<{ n: string }>('SELECT count(*) AS n FROM stored_events');
    const forged = new URLSearchParams({
      workflow_id: 'wf1',
      code: 'send_invoice',
      'document_id[0]': 'crm',
      'document_id[1]': 'CCrmDocumentDeal',
      'document_id[2]': 'DEAL_1',
      event_token: 'forged|A1|token',
      use_subscription: 'Y',
      timeout_duration: '0',
      ts: String(Math.floor(Date.now() / 1000)),
      'auth[member_id]': portal.memberId,
      'auth[application_token]': 'f'.repeat(32),
    });
    const response = await postForm(`${app.url}/bitrix24/robots/send_invoice`, forged.toString());
    expect(response.status).toBe(401);
    const after = await sql.query<{ n: string }>('SELECT count(*) AS n FROM stored_events');
    expect(after.rows[0].n).toBe(before.rows[0].n);
    expect(await storedRuns(portal.memberId)).toEqual([]);
  });
});
