import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';
import { startEmulator, type RunningEmulator } from '../../src/emulator';

const CLIENT = { clientId: 'test.app', clientSecret: 'test-secret' };

interface CapturedPost {
  path: string;
  contentType: string | undefined;
  body: string;
}

interface DecodedEvent {
  event: string;
  event_handler_id: string;
  data?: Record<string, unknown>;
  ts: string;
  auth: Record<string, string>;
}

interface Envelope<T> {
  result: T;
  error?: string;
}

let emulator: RunningEmulator;
let handlerServer: Server;
let handlerBase: string;
const captured: CapturedPost[] = [];

beforeAll(async () => {
  emulator = await startEmulator(CLIENT);
  handlerServer = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      captured.push({
        path: request.url ?? '',
        contentType: request.headers['content-type'],
        body,
      });
      response.statusCode = request.url?.includes('/failing/') ? 500 : 200;
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => handlerServer.listen(0, '127.0.0.1', resolve));
  handlerBase = `http://127.0.0.1:${(handlerServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emulator.close();
  await new Promise((resolve) => handlerServer.close(resolve));
});

let handlerCount = 0;

/** A handler URL of its own for each test, so captured POSTs never mix. */
function freshHandler(kind = 'hooks'): { url: string; posts: () => DecodedEvent[] } {
  const path = `/${kind}/${++handlerCount}`;
  return {
    url: `${handlerBase}${path}`,
    posts: () => captured.filter((post) => post.path === path).map((post) => decode(post.body)),
  };
}

function decode(body: string): DecodedEvent {
  return qs.parse(body) as unknown as DecodedEvent;
}

async function eventually(check: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not reached in 5 s');
}

async function installedByEvent() {
  const portal = await emulator.control.createPortal();
  const installHandler = freshHandler();
  const installed = await emulator.control.install(portal.memberId, {
    mode: 'event',
    handlerUrl: installHandler.url,
  });
  const call = async <T = unknown>(method: string, params: Record<string, unknown> = {}) => {
    const response = await fetch(`${portal.clientEndpoint}${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...params, auth: installed.auth.accessToken }),
    });
    return { status: response.status, body: (await response.json()) as Envelope<T> };
  };
  return { ...portal, installed, installHandler, call };
}

describe('event sender', () => {
  it('POSTs ONAPPINSTALL form-encoded with percent-encoded bracket keys, full auth and the application token', async () => {
    const portal = await installedByEvent();
    expect(portal.installed.delivered).toMatchObject({ status: 200, body: 'ok' });

    const [post] = captured.filter((candidate) =>
      portal.installHandler.url.endsWith(candidate.path),
    );
    expect(post.contentType).toBe('application/x-www-form-urlencoded');
    expect(post.body).toContain('auth%5Baccess_token%5D=');
    const event = decode(post.body);
    expect(event).toMatchObject({
      event: 'ONAPPINSTALL',
      data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
      auth: {
        access_token: portal.installed.auth.accessToken,
        refresh_token: portal.installed.auth.refreshToken,
        application_token: portal.applicationToken,
        member_id: portal.memberId,
        domain: portal.domain,
        client_endpoint: portal.clientEndpoint,
        server_endpoint: `${emulator.url}/rest/`,
        expires_in: '3600',
        scope: 'crm',
        status: 'F',
        user_id: '1',
      },
    });
    expect(event.ts).toMatch(/^\d{10}$/);
    expect(event.event_handler_id).toMatch(/^\d+$/);

    const [logged] = await emulator.control.sent(portal.memberId);
    expect(logged).toMatchObject({ event: 'ONAPPINSTALL', status: 200, body: post.body });
    expect((await portal.call<{ INSTALLED: boolean }>('app.info')).body.result.INSTALLED).toBe(
      true,
    );
  });

  it('sends ONOFFLINEEVENT without data but with a refresh token, at most once per minTimeout', async () => {
    const portal = await installedByEvent();
    const notifications = freshHandler();
    await portal.call('event.bind', { event: 'ONCRMDEALUPDATE', event_type: 'offline' });
    await portal.call('event.bind', {
      event: 'ONOFFLINEEVENT',
      handler: notifications.url,
      options: { minTimeout: 60 },
    });
    const enqueue = () => emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1 });

    expect((await enqueue()).notificationsSent).toBe(1);
    expect((await enqueue()).notificationsSent).toBe(0);
    await emulator.control.advanceClock(61);
    expect((await enqueue()).notificationsSent).toBe(1);

    await eventually(() => notifications.posts().length === 2);
    const [first] = notifications.posts();
    expect(first.event).toBe('ONOFFLINEEVENT');
    expect(first).not.toHaveProperty('data');
    expect(first.auth.refresh_token).toMatch(/^[a-z0-9]{32}$/);
    expect((await emulator.control.stats(portal.memberId)).queue.unreserved).toBe(3);
  });

  it('sends one ONOFFLINEEVENT per portal hit when minTimeout is 0', async () => {
    const portal = await installedByEvent();
    const notifications = freshHandler();
    await portal.call('event.bind', { event: 'ONCRMDEALUPDATE', event_type: 'offline' });
    await portal.call('event.bind', {
      event: 'ONOFFLINEEVENT',
      handler: notifications.url,
      options: { minTimeout: 0 },
    });

    const oneHit = await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5 });
    const nextHit = await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1 });

    expect([oneHit.notificationsSent, nextHit.notificationsSent]).toEqual([1, 1]);
    await eventually(() => notifications.posts().length === 2);
  });

  it('stores silently when asked not to notify, as when a notification is lost', async () => {
    const portal = await installedByEvent();
    const notifications = freshHandler();
    await portal.call('event.bind', { event: 'ONCRMDEALUPDATE', event_type: 'offline' });
    await portal.call('event.bind', { event: 'ONOFFLINEEVENT', handler: notifications.url });

    const silent = await emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: 2,
      notify: false,
    });

    expect(silent).toEqual({ inserted: 2, merged: 0, suppressed: 0, notificationsSent: 0 });
    expect((await emulator.control.stats(portal.memberId)).notificationsSent).toBe(0);
  });

  it('sends an agent’s notification without tokens', async () => {
    const portal = await installedByEvent();
    const notifications = freshHandler();
    await portal.call('event.bind', { event: 'ONCRMDEALUPDATE', event_type: 'offline' });
    await portal.call('event.bind', { event: 'ONOFFLINEEVENT', handler: notifications.url });

    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1, userId: 0 });

    await eventually(() => notifications.posts().length === 1);
    const [notification] = notifications.posts();
    expect(notification.auth).not.toHaveProperty('access_token');
    expect(notification.auth).not.toHaveProperty('refresh_token');
    expect(notification.auth.application_token).toBe(portal.applicationToken);
  });

  it('sends nothing and stores nothing before installation is finished', async () => {
    const portal = await emulator.control.createPortal();
    const { form } = await emulator.control.install(portal.memberId, { mode: 'ui' });
    const notifications = freshHandler();
    const bind = (params: Record<string, unknown>) =>
      fetch(`${portal.clientEndpoint}event.bind`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...params, auth: form.AUTH_ID }),
      });
    await bind({ event: 'ONCRMDEALUPDATE', event_type: 'offline' });
    await bind({ event: 'ONOFFLINEEVENT', handler: notifications.url });

    const early = await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1 });
    expect(early).toMatchObject({ inserted: 0, notificationsSent: 0 });

    await emulator.control.finishInstall(portal.memberId);
    const late = await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1 });
    expect(late).toMatchObject({ inserted: 1, notificationsSent: 1 });
  });

  it('does not retry a handler that fails', async () => {
    const portal = await emulator.control.createPortal();
    const failing = freshHandler('failing');

    const installed = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: failing.url,
    });

    expect(installed.delivered.status).toBe(500);
    expect(failing.posts()).toHaveLength(1);
    expect(await emulator.control.sent(portal.memberId)).toHaveLength(1);
  });
});

describe('CRM methods', () => {
  it('turn a user’s writes into offline rows and online events', async () => {
    const portal = await installedByEvent();
    const online = freshHandler();
    await portal.call('event.bind', { event: 'ONCRMDEALADD', event_type: 'offline' });
    await portal.call('event.bind', { event: 'ONCRMDEALUPDATE', handler: online.url });

    const added = await emulator.control.userAction(portal.memberId, {
      method: 'crm.deal.add',
      params: { fields: { TITLE: 'Big deal' } },
    });
    await emulator.control.userAction(portal.memberId, {
      method: 'crm.deal.update',
      params: { id: 1, fields: { TITLE: 'Bigger deal' } },
    });

    expect(added).toEqual({ result: 1 });
    const rows =
      await portal.call<{ EVENT_NAME: string; EVENT_DATA: unknown }[]>('event.offline.list');
    expect(rows.body.result).toMatchObject([
      { EVENT_NAME: 'ONCRMDEALADD', EVENT_DATA: { FIELDS: { ID: '1' } } },
    ]);
    await eventually(() => online.posts().length === 1);
    const [update] = online.posts();
    expect(update).toMatchObject({ event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '1' } } });
    expect(update.auth.access_token).toMatch(/^[a-z0-9]{32}$/);
    expect(update.auth).not.toHaveProperty('refresh_token');
  });

  it('skip the app’s own writes for an offline binding on the same connector while the loop rule is on', async () => {
    const portal = await installedByEvent();
    await portal.call('event.bind', { event: 'ONCRMDEALADD', event_type: 'offline' });

    await portal.call('crm.deal.add', { fields: { TITLE: 'Made by the app' } });
    expect((await emulator.control.stats(portal.memberId)).queue.total).toBe(0);

    await emulator.control.setFaults(portal.memberId, { loopRule: false });
    await portal.call('crm.deal.add', { fields: { TITLE: 'Made by the app again' } });
    expect((await emulator.control.stats(portal.memberId)).queue.total).toBe(1);
  });

  it('write no offline rows while payment is disallowed', async () => {
    const portal = await installedByEvent();
    await portal.call('event.bind', { event: 'ONCRMDEALADD', event_type: 'offline' });
    await emulator.control.setFaults(portal.memberId, { paymentAllowed: false });

    await emulator.control.userAction(portal.memberId, { method: 'crm.deal.add', params: {} });

    expect((await emulator.control.stats(portal.memberId)).queue.total).toBe(0);
  });
});

describe('uninstall', () => {
  it('sends ONAPPUNINSTALL without tokens, then the app’s tokens, handlers and queue are gone', async () => {
    const portal = await installedByEvent();
    const uninstallHandler = freshHandler();
    await portal.call('event.bind', { event: 'ONAPPUNINSTALL', handler: uninstallHandler.url });
    await portal.call('event.bind', { event: 'ONCRMDEALUPDATE', event_type: 'offline' });
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 3 });

    const { delivered } = await emulator.control.uninstall(portal.memberId, { clean: true });

    expect(delivered).toEqual([{ url: uninstallHandler.url, status: 200, body: 'ok' }]);
    const [event] = uninstallHandler.posts();
    expect(event.event).toBe('ONAPPUNINSTALL');
    expect(event.data).toEqual({ LANGUAGE_ID: 'en', CLEAN: '1' });
    expect(Object.keys(event.auth).sort()).toEqual(
      ['application_token', 'client_endpoint', 'domain', 'member_id', 'server_endpoint'].sort(),
    );

    const afterwards = await portal.call('app.info');
    expect(afterwards.status).toBe(401);
    expect(afterwards.body.error).toBe('APPLICATION_NOT_FOUND');
    const refresh = await fetch(
      `${emulator.url}/oauth/token/?grant_type=refresh_token&client_id=${CLIENT.clientId}&client_secret=${CLIENT.clientSecret}&refresh_token=${portal.installed.auth.refreshToken}`,
    );
    expect(((await refresh.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await emulator.control.stats(portal.memberId)).toMatchObject({
      bindings: [],
      queue: { total: 0 },
      installed: false,
      installState: 'uninstalled',
    });
  });
});
