import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { StoredEventEntity } from '../../src/inbox/stored-event.entity';
import { RobotAnswerEntity, type RobotAnswerState } from '../../src/robots/robot-answer.entity';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_ADMIN_TOKEN, TestApp } from '../support/test-app';
import { arrangeEvents, arrangePortal, NOT_DUE } from './admin-fixtures';
import { bearer } from './admin-routes';

interface RobotAnswerItem {
  state: string;
  attempts: number;
  deadlineAt: string | null;
  sentAt: string | null;
  error: string | null;
}
interface EventItem {
  id: string;
  kind: 'event' | 'robot';
  eventName: string;
  robotAnswer: RobotAnswerItem | null;
}
interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Robot runs are stored events named ROBOT:<CODE>; the admin API lists them by kind with their answer. */
describe('admin API: robot runs among the events', () => {
  let database: TestDatabase;
  let testApp: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({ databaseUrl: database.url });
    dataSource = testApp.app.get(DataSource);
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${testApp.url}${path}`, { headers: bearer(TEST_ADMIN_TOKEN) });
    return { status: response.status, body: (await response.json()) as T };
  };

  async function collect(path: string): Promise<{ items: EventItem[]; pages: number }> {
    const items: EventItem[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = cursor ? `${path}&cursor=${encodeURIComponent(cursor)}` : path;
      const { status, body } = await get<Page<EventItem>>(url);
      expect(status).toBe(200);
      items.push(...body.items);
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor);
    return { items, pages };
  }

  /** A stored robot run (handled or not), as RobotWebhookService stores one. */
  async function arrangeRun(
    memberId: string,
    options: { waits: boolean; status: 'processed' | 'pending' },
  ): Promise<StoredEventEntity> {
    const token = `wf|A1|${randomBytes(8).toString('hex')}`;
    const [run] = await arrangeEvents(dataSource, memberId, 1, {
      source: 'online',
      queueId: null,
      messageId: null,
      dedupKey: randomBytes(32).toString('hex'),
      eventName: 'ROBOT:SEND_INVOICE',
      data: {
        workflow_id: 'wf',
        code: 'send_invoice',
        document_id: ['crm', 'CCrmDocumentDeal', 'DEAL_7'],
        document_type: ['crm', 'CCrmDocumentDeal', 'DEAL'],
        event_token: token,
        properties: {},
        use_subscription: options.waits ? 'Y' : 'N',
        timeout_duration: 0,
      },
      status: options.status,
      nextAttemptAt: options.status === 'pending' ? NOT_DUE : null,
      processedAt: options.status === 'processed' ? new Date() : null,
    });
    return run;
  }

  /** Settled states only: the app's sweep would send a pending one. */
  async function arrangeAnswer(
    run: StoredEventEntity,
    state: Exclude<RobotAnswerState, 'pending' | 'sending'>,
    overrides: Partial<RobotAnswerEntity> = {},
  ): Promise<void> {
    await dataSource.getRepository(RobotAnswerEntity).save({
      eventId: run.id,
      state,
      returnValues: {},
      logMessage: null,
      deadlineAt: null,
      attempts: 1,
      sentAt: state === 'sent' ? new Date() : null,
      error: null,
      ...overrides,
    });
  }

  it('filters by kind with keyset pages, showing each item kind and each robot run its answer', async () => {
    const portal = await arrangePortal(dataSource);
    const memberId = portal.memberId;
    await arrangeEvents(dataSource, memberId, 3);
    const notWaiting = await arrangeRun(memberId, { waits: false, status: 'processed' });
    const notRunYet = await arrangeRun(memberId, { waits: true, status: 'pending' });
    const sent = await arrangeRun(memberId, { waits: true, status: 'processed' });
    await arrangeAnswer(sent, 'sent');
    const late = await arrangeRun(memberId, { waits: true, status: 'processed' });
    const deadline = new Date(Date.now() - 60_000);
    await arrangeAnswer(late, 'too_late', { deadlineAt: deadline, error: 'stopped waiting' });
    const failed = await arrangeRun(memberId, { waits: true, status: 'processed' });
    await arrangeAnswer(failed, 'failed', { attempts: 3, error: 'ACCESS_DENIED' });
    const robotIds = [notWaiting, notRunYet, sent, late, failed].map((run) => run.id);
    await arrangeEvents(dataSource, memberId, 2);

    const robots = await collect(`/admin/events?memberId=${memberId}&kind=robot&limit=2`);
    expect(robots.pages).toBe(3);
    expect(robots.items.map((item) => item.id)).toEqual([...robotIds].reverse());
    expect(robots.items.every((item) => item.kind === 'robot')).toBe(true);
    const byId = new Map(robots.items.map((item) => [item.id, item]));
    expect(byId.get(notWaiting.id)?.robotAnswer).toEqual({
      state: 'not_required',
      attempts: 0,
      deadlineAt: null,
      sentAt: null,
      error: null,
    });
    expect(byId.get(notRunYet.id)?.robotAnswer).toMatchObject({ state: 'waiting_for_run' });
    expect(byId.get(sent.id)?.robotAnswer).toMatchObject({ state: 'sent', attempts: 1 });
    expect(byId.get(sent.id)?.robotAnswer?.sentAt).toEqual(expect.any(String));
    expect(byId.get(late.id)?.robotAnswer).toEqual({
      state: 'too_late',
      attempts: 1,
      deadlineAt: deadline.toISOString(),
      sentAt: null,
      error: 'stopped waiting',
    });
    expect(byId.get(failed.id)?.robotAnswer).toMatchObject({
      state: 'failed',
      attempts: 3,
      error: 'ACCESS_DENIED',
    });

    const ascending = await collect(
      `/admin/events?memberId=${memberId}&kind=robot&order=asc&limit=3`,
    );
    expect(ascending.items.map((item) => item.id)).toEqual(robotIds);

    const plain = await collect(`/admin/events?memberId=${memberId}&kind=event&limit=2`);
    expect(plain.items).toHaveLength(5);
    for (const item of plain.items) {
      expect(item).toMatchObject({ kind: 'event', robotAnswer: null });
      expect(robotIds).not.toContain(item.id);
    }

    const both = await collect(`/admin/events?memberId=${memberId}&limit=50`);
    expect(both.items).toHaveLength(10);
    expect(both.items.filter((item) => item.kind === 'robot')).toHaveLength(5);
  });

  it('filters robot runs across portals and by robot, and shows the answer in the detail', async () => {
    const first = await arrangePortal(dataSource);
    const second = await arrangePortal(dataSource);
    const run = await arrangeRun(first.memberId, { waits: true, status: 'processed' });
    await arrangeAnswer(run, 'sent', { error: 'already answered: ACCESS_DENIED', attempts: 2 });
    await arrangeRun(second.memberId, { waits: false, status: 'processed' });
    await arrangeEvents(dataSource, second.memberId, 2);

    const all = await collect('/admin/events?kind=robot&limit=1');
    expect(all.items.length).toBeGreaterThanOrEqual(2);
    expect(all.items.every((item) => item.kind === 'robot')).toBe(true);
    expect(new Set(all.items.map((item) => item.id)).size).toBe(all.items.length);

    const named = await get<Page<EventItem>>(
      `/admin/events?memberId=${first.memberId}&eventName=robot:send_invoice`,
    );
    expect(named.status).toBe(200);
    expect(named.body.items.map((item) => item.id)).toEqual([run.id]);
    const none = await get<Page<EventItem>>(
      `/admin/events?memberId=${first.memberId}&eventName=ROBOT:SEND_INVOICE&kind=event`,
    );
    expect(none.body.items).toEqual([]);

    const detail = await get<EventItem>(`/admin/events/${run.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({
      kind: 'robot',
      robotAnswer: { state: 'sent', attempts: 2, error: 'already answered: ACCESS_DENIED' },
    });
  });

  it.each([
    ['an unknown kind', '/admin/events?kind=automation'],
    ['a kind in the wrong case', '/admin/events?kind=ROBOT'],
    ['two kinds', '/admin/events?kind=robot&kind=event'],
    ['an empty kind', '/admin/events?kind='],
  ])('answers 400 for %s', async (_label, path) => {
    const { status, body } = await get<{ error: { code: string; message: string } }>(path);
    expect(status).toBe(400);
    expect(body.error.code).toBe('bad_request');
    expect(body.error.message).toContain('kind');
  });

  it('refuses a cursor taken from a list of another kind', async () => {
    const portal = await arrangePortal(dataSource);
    await arrangeRun(portal.memberId, { waits: false, status: 'processed' });
    await arrangeRun(portal.memberId, { waits: false, status: 'processed' });
    const first = await get<Page<EventItem>>(
      `/admin/events?memberId=${portal.memberId}&kind=robot&limit=1`,
    );
    expect(first.body.nextCursor).not.toBeNull();
    const other = await get<{ error: { code: string } }>(
      `/admin/events?memberId=${portal.memberId}&kind=event&limit=1&cursor=${encodeURIComponent(
        first.body.nextCursor!,
      )}`,
    );
    expect(other.status).toBe(400);
  });

  it('documents the kind filter and the robot answer in the OpenAPI document', async () => {
    const response = await fetch(`${testApp.url}/admin/docs/openapi.json`);
    const document = (await response.json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; schema?: unknown }[] }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const kind = document.paths['/admin/events'].get.parameters?.find((p) => p.name === 'kind');
    expect(kind?.schema).toMatchObject({ enum: ['event', 'robot'] });
    expect(document.components.schemas.EventDto.properties).toHaveProperty('kind');
    expect(document.components.schemas.EventDto.properties).toHaveProperty('robotAnswer');
    const state = document.components.schemas.RobotAnswerDto.properties?.state as {
      enum?: string[];
    };
    expect(state.enum).toEqual(
      expect.arrayContaining(['not_required', 'waiting_for_run', 'sent', 'too_late', 'failed']),
    );
  });
});
