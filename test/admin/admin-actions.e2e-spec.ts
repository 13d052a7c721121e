import { DataSource } from 'typeorm';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import {
  startTestApp,
  TEST_ADMIN_TOKEN,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  TestApp,
} from '../support/test-app';
import { arrangeEvents, newMemberId } from './admin-fixtures';
import { bearer } from './admin-routes';

interface AdminAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
}
interface EventItem {
  id: string;
  status: string;
  attempts: number;
  history: { attempt: number; trigger: string; outcome: string; handlers: string[] }[];
}

describe('admin actions against the emulator', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let testApp: TestApp;
  /** Every admin answer of this file, for the "no token ever leaves" check. */
  const answers: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    emulator = await startEmulator({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    testApp = await startTestApp({
      databaseUrl: database.url,
      env: { BITRIX24_OAUTH_URL: emulator.url, EXAMPLE_HANDLERS: 'true' },
    });
  });

  afterAll(async () => {
    await testApp?.close();
    await emulator?.close();
    await database?.drop();
  });

  async function admin<T = Record<string, unknown>>(
    method: string,
    path: string,
  ): Promise<AdminAnswer<T>> {
    const response = await fetch(`${testApp.url}${path}`, {
      method,
      headers: bearer(TEST_ADMIN_TOKEN),
    });
    const text = await response.text();
    answers.push(text);
    return { status: response.status, body: JSON.parse(text) as T, text };
  }

  /** Installs through the app's own install page, as Bitrix24 does for an app with a UI. */
  async function install(): Promise<CreatedPortal> {
    const portal = await emulator.control.createPortal();
    const { form, query } = await emulator.control.install(portal.memberId, { mode: 'ui' });
    const response = await fetch(
      `${testApp.url}/bitrix24/install?${new URLSearchParams(query).toString()}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      },
    );
    expect(response.status).toBe(200);
    await emulator.control.finishInstall(portal.memberId);
    const { body } = await admin<{ status: string }>('GET', `/admin/portals/${portal.memberId}`);
    expect(body.status).toBe('active');
    return portal;
  }

  async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('drains now and answers what was drained', async () => {
    const portal = await install();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 7, notify: false });

    const drained = await admin('POST', `/admin/portals/${portal.memberId}/drain`);
    expect(drained.status).toBe(200);
    expect(drained.body).toMatchObject({
      memberId: portal.memberId,
      outcome: 'drained',
      events: 7,
      deliveryMode: 'exactly-once',
    });
    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.reservedProcessIds).toEqual([]);

    const events = await admin<{ items: unknown[] }>(
      'GET',
      `/admin/events?memberId=${portal.memberId}`,
    );
    expect(events.body.items).toHaveLength(7);
    const detail = await admin<{ lastDrain: unknown }>('GET', `/admin/portals/${portal.memberId}`);
    expect(detail.body.lastDrain).toMatchObject({ outcome: 'drained', events: 7 });

    const again = await admin('POST', `/admin/portals/${portal.memberId}/drain`);
    expect(again.body).toMatchObject({ outcome: 'drained', events: 0 });
  });

  it('re-binds idempotently', async () => {
    const portal = await install();
    const before = await emulator.control.stats(portal.memberId);
    const first = await admin<{ bound: string[]; alreadyBound: string[] }>(
      'POST',
      `/admin/portals/${portal.memberId}/rebind`,
    );
    expect(first.status).toBe(200);
    expect(first.body.bound).toEqual([]);
    expect(first.body.alreadyBound).toEqual(
      expect.arrayContaining(['ONOFFLINEEVENT', 'ONCRMDEALUPDATE']),
    );
    const after = await emulator.control.stats(portal.memberId);
    expect(after.bindings).toHaveLength(before.bindings.length);
  });

  it('refreshes the token chain and answers only its new expiry', async () => {
    const portal = await install();
    const before = await emulator.control.stats(portal.memberId);
    const generationBefore = (
      await admin<{ token: { generation: number } }>('GET', `/admin/portals/${portal.memberId}`)
    ).body.token.generation;

    const refreshed = await admin<{ generation: number; accessExpiresAt: string }>(
      'POST',
      `/admin/portals/${portal.memberId}/refresh-token`,
    );
    expect(refreshed.status).toBe(200);
    expect(Object.keys(refreshed.body).sort()).toEqual([
      'accessExpiresAt',
      'generation',
      'memberId',
    ]);
    expect(refreshed.body.generation).toBe(generationBefore + 1);
    expect(new Date(refreshed.body.accessExpiresAt).getTime()).toBeGreaterThan(Date.now());
    expect((await emulator.control.stats(portal.memberId)).refreshes).toBe(before.refreshes + 1);
  });

  it('replays an event: the handler runs again and the run is recorded', async () => {
    const portal = await install();
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [{ event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '4242' } } }],
      notify: false,
    });
    await admin('POST', `/admin/portals/${portal.memberId}/drain`);
    const [listed] = (
      await admin<{ items: { id: string }[] }>('GET', `/admin/events?memberId=${portal.memberId}`)
    ).body.items;
    const handled = await eventually(
      async () => (await admin<EventItem>('GET', `/admin/events/${listed.id}`)).body,
      (event) => event.status === 'processed',
    );
    expect(handled.status).toBe('processed');
    const runsBefore = handled.history.length;

    const replayed = await admin<EventItem>('POST', `/admin/events/${listed.id}/replay`);
    expect(replayed.status).toBe(200);
    expect(replayed.body.status).toBe('processed');
    expect(replayed.body.attempts).toBe(handled.attempts + 1);
    expect(replayed.body.history).toHaveLength(runsBefore + 1);
    expect(replayed.body.history[runsBefore]).toMatchObject({
      trigger: 'replay',
      outcome: 'processed',
      handlers: expect.arrayContaining(['DealChangeLogHandler.onDealChange']) as string[],
    });
    const handlerRuns = testApp.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.msg === 'deal changed' && entry.eventId === listed.id);
    expect(handlerRuns.map((entry) => entry.trigger)).toEqual(['automatic', 'replay']);
  });

  it("discards a dead event: kept as discarded with the discard in its history, and its object's later events go on", async () => {
    // ONCRMLEADUPDATE has no handler here: once the line moves, the later event ends unhandled.
    const dataSource = testApp.app.get(DataSource);
    const memberId = newMemberId();
    const line = { eventName: 'ONCRMLEADUPDATE', orderingKey: `CRMLEAD:${memberId}` };
    const [dead] = await arrangeEvents(dataSource, memberId, 1, {
      ...line,
      status: 'dead',
      attempts: 3,
      nextAttemptAt: null,
      lastError: 'handler threw: boom',
    });
    const [later] = await arrangeEvents(dataSource, memberId, 1, {
      ...line,
      nextAttemptAt: new Date(),
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await admin<EventItem>('GET', `/admin/events/${later.id}`)).body).toMatchObject({
      status: 'pending',
      attempts: 0,
    });
    const refusedReplay = await admin<{ error: { code: string } }>(
      'POST',
      `/admin/events/${later.id}/replay`,
    );
    expect(refusedReplay.status).toBe(409);
    expect(refusedReplay.body.error.code).toBe('event_waiting_in_line');
    const refusedDiscard = await admin<{ error: { code: string } }>(
      'POST',
      `/admin/events/${later.id}/discard`,
    );
    expect(refusedDiscard.status).toBe(409);
    expect(refusedDiscard.body.error.code).toBe('event_not_discardable');

    const discarded = await admin<EventItem & { lastError: string }>(
      'POST',
      `/admin/events/${dead.id}/discard`,
    );
    expect(discarded.status).toBe(200);
    expect(discarded.body).toMatchObject({
      status: 'discarded',
      attempts: 3,
      lastError: 'handler threw: boom',
    });
    expect(discarded.body.history.at(-1)).toMatchObject({
      attempt: 3,
      trigger: 'discard',
      outcome: 'discarded',
      handlers: [],
    });
    await eventually(
      async () => (await admin<EventItem>('GET', `/admin/events/${later.id}`)).body,
      (event) => event.status === 'unhandled',
    );
    const listed = await admin<{ items: { id: string }[] }>(
      'GET',
      `/admin/events?memberId=${memberId}&status=discarded`,
    );
    expect(listed.body.items.map((item) => item.id)).toEqual([dead.id]);
    const again = await admin<{ error: { code: string } }>(
      'POST',
      `/admin/events/${dead.id}/discard`,
    );
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('event_not_discardable');
  });

  it('answers 404 for actions on unknown portals and events, and 400 for malformed ids', async () => {
    for (const [method, path] of [
      ['POST', '/admin/portals/0123456789abcdef0123456789abcdef/drain'],
      ['POST', '/admin/portals/0123456789abcdef0123456789abcdef/rebind'],
      ['POST', '/admin/portals/0123456789abcdef0123456789abcdef/refresh-token'],
      ['DELETE', '/admin/portals/0123456789abcdef0123456789abcdef'],
      ['POST', '/admin/events/9000000000000000000/replay'],
      ['POST', '/admin/events/9000000000000000000/discard'],
    ]) {
      expect((await admin(method, path)).status).toBe(404);
    }
    for (const [method, path] of [
      ['POST', `/admin/portals/${encodeURIComponent("x' OR 1=1")}/drain`],
      ['DELETE', `/admin/portals/${encodeURIComponent('*')}`],
      ['POST', `/admin/events/${encodeURIComponent('1;DELETE')}/replay`],
      ['POST', `/admin/events/${encodeURIComponent('1;DELETE')}/discard`],
      ['POST', '/admin/events/0/discard'],
    ]) {
      expect((await admin(method, path)).status).toBe(400);
    }
  });

  it('offboards: status deleted, tokens wiped, events kept, and no more traffic to the portal', async () => {
    const portal = await install();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 3, notify: false });
    await admin('POST', `/admin/portals/${portal.memberId}/drain`);

    const offboarded = await admin<{
      status: string;
      token: { present: boolean; health: string };
      inbox: Record<string, number>;
    }>('DELETE', `/admin/portals/${portal.memberId}`);
    expect(offboarded.status).toBe(200);
    expect(offboarded.body.status).toBe('deleted');
    expect(offboarded.body.token).toMatchObject({ present: false, health: 'missing' });
    const kept = await admin<{ items: unknown[] }>(
      'GET',
      `/admin/events?memberId=${portal.memberId}`,
    );
    expect(kept.body.items).toHaveLength(3);

    const offboardedAt = new Date().toISOString();
    const quiet = await emulator.control.stats(portal.memberId);
    // Everything that could reach the portal: its notifications, the poller's work, the levers.
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2 });
    // The portal still notifies the app; the app refuses the notification and calls nothing.
    const notified = await eventually(
      async () =>
        (await emulator.control.sent(portal.memberId)).filter(
          (sent) => sent.event === 'ONOFFLINEEVENT' && sent.sentAt >= offboardedAt,
        ),
      (sent) => sent.length > 0 && sent.every((delivery) => delivery.status !== null),
    );
    expect(notified.map((delivery) => delivery.status)).toEqual([401]);
    const drain = await admin('POST', `/admin/portals/${portal.memberId}/drain`);
    expect(drain.body).toMatchObject({ outcome: 'portal_not_active', events: 0 });
    expect((await admin('POST', `/admin/portals/${portal.memberId}/rebind`)).status).toBe(409);
    expect((await admin('POST', `/admin/portals/${portal.memberId}/refresh-token`)).status).toBe(
      409,
    );
    expect((await admin('DELETE', `/admin/portals/${portal.memberId}`)).status).toBe(200);

    const after = await emulator.control.stats(portal.memberId);
    expect(after.httpRequests).toBe(quiet.httpRequests);
    expect(after.restCalls).toEqual(quiet.restCalls);
    expect(after.refreshes).toBe(quiet.refreshes);
    expect(after.queue).toMatchObject({ unreserved: 2, reserved: 0 });
    const history = await admin<{ statusHistory: { to: string }[] }>(
      'GET',
      `/admin/portals/${portal.memberId}`,
    );
    expect(history.body.statusHistory[0].to).toBe('deleted');
  });

  it('never answers or logs a token issued by the emulator', async () => {
    // Exercise every route once more, error answers included, on a portal of its own.
    const portal = await install();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2, notify: false });
    await admin('POST', `/admin/portals/${portal.memberId}/drain`);
    await admin('POST', `/admin/portals/${portal.memberId}/rebind`);
    await admin('POST', `/admin/portals/${portal.memberId}/refresh-token`);
    const { items } = (
      await admin<{ items: { id: string }[] }>('GET', `/admin/events?memberId=${portal.memberId}`)
    ).body;
    await admin('GET', `/admin/events/${items[0].id}`);
    await admin('POST', `/admin/events/${items[0].id}/replay`);
    await admin('GET', '/admin/portals');
    await admin('GET', `/admin/portals/${portal.memberId}`);
    await admin('GET', '/admin/stats');
    await admin('GET', '/admin/events?limit=999');
    await admin('DELETE', `/admin/portals/${portal.memberId}`);

    const issued = await emulator.control.tokens();
    const secrets = [...issued.accessTokens, ...issued.refreshTokens, ...issued.applicationTokens];
    expect(secrets.length).toBeGreaterThan(0);
    const everything = [...answers, ...testApp.logs].join('\n');
    expect(answers.length).toBeGreaterThan(10);
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });
});
