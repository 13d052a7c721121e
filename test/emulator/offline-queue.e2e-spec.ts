import qs from 'qs';
import {
  ManualClock,
  startEmulator,
  type CreatePortalRequest,
  type RunningEmulator,
} from '../../src/emulator';

const CLIENT = { clientId: 'test.app', clientSecret: 'test-secret' };

interface OfflineEvent {
  ID: string;
  TIMESTAMP_X: string;
  EVENT_NAME: string;
  EVENT_DATA: unknown;
  EVENT_ADDITIONAL: { user_id: string };
  MESSAGE_ID: string;
  PROCESS_ID?: string;
  ERROR?: string;
}

interface Envelope<T> {
  result: T;
  total?: number;
  next?: number;
  error?: string;
  error_description?: string;
  argument?: string;
}

interface Answer<T> {
  status: number;
  body: Envelope<T>;
}

type OfflineGet = Answer<{ process_id: string | null; events: OfflineEvent[] }>;

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator(CLIENT);
});

afterAll(() => emulator.close());

async function callRest<T>(url: string, params: Record<string, unknown>): Promise<Answer<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  return { status: response.status, body: (await response.json()) as Envelope<T> };
}

/** An installed app with offline bindings for deal events, and a helper to call its portal. */
async function drainablePortal(request: CreatePortalRequest = {}, running = emulator) {
  const portal = await running.control.createPortal(request);
  const { form } = await running.control.install(portal.memberId, { mode: 'ui' });
  await running.control.finishInstall(portal.memberId);
  const call = <T>(method: string, params: Record<string, unknown> = {}, token = form.AUTH_ID) =>
    callRest<T>(`${portal.clientEndpoint}${method}`, { ...params, auth: token });
  for (const event of ['ONCRMDEALADD', 'ONCRMDEALUPDATE']) {
    const bound = await call<boolean>('event.bind', { event, event_type: 'offline' });
    expect(bound.body.result).toBe(true);
  }
  const get = (params: Record<string, unknown>) =>
    call('event.offline.get', params) as Promise<OfflineGet>;
  const list = (params: Record<string, unknown> = {}) =>
    call<OfflineEvent[]>('event.offline.list', params);
  return { ...portal, accessToken: form.AUTH_ID, call, get, list };
}

const dealUpdate = (id: number) => ({
  event: 'ONCRMDEALUPDATE',
  data: { FIELDS: { ID: String(id) } },
});

describe('event.offline.get', () => {
  it('gives parallel gets disjoint sets of rows', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 100 });

    const answers = await Promise.all([1, 2, 3, 4].map(() => portal.get({ clear: 0, limit: 30 })));

    const ids = answers.flatMap((answer) => answer.body.result.events.map((event) => event.ID));
    expect(new Set(ids).size).toBe(100);
    expect(answers.map((answer) => answer.body.result.events.length).sort()).toEqual([
      10, 30, 30, 30,
    ]);
    expect(new Set(answers.map((answer) => answer.body.result.process_id)).size).toBe(4);
  });

  it('returns the same rows for a reused process_id and never adds new ones', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 3 });
    const first = await portal.get({ clear: 0, limit: 10 });
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2 });

    const again = await portal.get({
      clear: 0,
      limit: 10,
      process_id: first.body.result.process_id,
    });

    expect(again.body.result.process_id).toBe(first.body.result.process_id);
    expect(again.body.result.events.map((event) => event.ID)).toEqual(
      first.body.result.events.map((event) => event.ID),
    );
    expect((await emulator.control.stats(portal.memberId)).queue).toMatchObject({
      unreserved: 2,
      reserved: 3,
    });
  });

  it('echoes an unknown process_id with no events and no error', async () => {
    const portal = await drainablePortal();
    const unknown = await portal.get({ clear: 0, process_id: 'x'.repeat(32) });

    expect(unknown.status).toBe(200);
    expect(unknown.body.result).toEqual({ process_id: 'x'.repeat(32), events: [] });
  });

  it('returns rows in the contract shape, oldest first, with a null process_id under clear=1', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { events: [dealUpdate(5)] });

    const drained = await portal.get({});

    expect(drained.body.result.process_id).toBeNull();
    expect(drained.body.result.events).toEqual([
      {
        ID: expect.stringMatching(/^\d+$/) as unknown,
        TIMESTAMP_X: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00$/) as unknown,
        EVENT_NAME: 'ONCRMDEALUPDATE',
        EVENT_DATA: { FIELDS: { ID: '5' } },
        EVENT_ADDITIONAL: { user_id: '1' },
        MESSAGE_ID: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown,
      },
    ]);
    expect((await emulator.control.stats(portal.memberId)).queue.total).toBe(0);
  });

  it('deletes the whole batch when a passed process_id is read with clear=1', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5 });
    const reserved = await portal.get({ clear: 0, limit: 5 });

    const cleared = await portal.get({
      clear: 1,
      limit: 2,
      process_id: reserved.body.result.process_id,
    });

    expect(cleared.body.result.events).toHaveLength(2);
    expect(cleared.body.result.process_id).toBe(reserved.body.result.process_id);
    expect((await emulator.control.stats(portal.memberId)).queue.total).toBe(0);
  });

  it('refuses clear=0 with WRONG_LICENSE without rest_offline_extended, and still drains with clear=1', async () => {
    const portal = await drainablePortal({ features: { rest_offline_extended: false } });
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2 });

    const refused = await portal.get({ clear: 0 });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: 'WRONG_LICENSE',
      error_description:
        'This feature is not enabled for the current license: extended offline events handling',
    });

    expect((await portal.get({ clear: 1 })).body.result.events).toHaveLength(2);
  });

  it('refuses auth_connector with WRONG_LICENSE unless the portal has rest_auth_connector', async () => {
    const standard = await drainablePortal();
    const refused = await standard.get({ auth_connector: 'sync' });
    expect(refused.status).toBe(403);
    expect(refused.body.error_description).toBe(
      'This feature is not enabled for the current license: auth_connector',
    );

    const enterprise = await drainablePortal({ plan: 'enterprise' });
    await enterprise.call('event.bind', {
      event: 'ONCRMDEALADD',
      event_type: 'offline',
      auth_connector: 'sync',
    });
    await emulator.control.enqueueOfflineEvents(enterprise.memberId, {
      events: [{ event: 'ONCRMDEALADD', data: { FIELDS: { ID: '1' } } }],
    });
    expect((await enterprise.get({ auth_connector: 'sync' })).body.result.events).toHaveLength(1);
    expect((await enterprise.get({})).body.result.events).toHaveLength(1);
  });

  it('answers bad arguments with the contract errors', async () => {
    const portal = await drainablePortal();

    const zeroLimit = await portal.get({ limit: 0 });
    expect(zeroLimit.status).toBe(400);
    expect(zeroLimit.body).toMatchObject({
      error: 'ERROR_ARGUMENT',
      error_description: 'Value must be positive integer',
      argument: 'LIMIT',
    });
    expect((await portal.get({ filter: { '!ID': 1 } })).body.error).toBe('ERROR_ARGUMENT');
    expect((await portal.get({ filter: { '@ID': [1, 2] } })).body.error).toBe('ERROR_ARGUMENT');

    const { code } = await emulator.control.createAuthorizationCode(portal.memberId, {
      userId: 9,
      admin: false,
    });
    const exchange = await fetch(
      `${emulator.url}/oauth/token/?grant_type=authorization_code&client_id=${CLIENT.clientId}&client_secret=${CLIENT.clientSecret}&code=${code}`,
    );
    const { access_token: userToken } = (await exchange.json()) as { access_token: string };
    const notAdmin = await portal.call('event.offline.get', {}, userToken);
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body).toMatchObject({
      error: 'ACCESS_DENIED',
      error_description: 'Access denied!',
    });

    const fromPortalUi = await emulator.control.userAction(portal.memberId, {
      method: 'event.offline.get',
    });
    expect(fromPortalUi).toMatchObject({ error: 'WRONG_AUTH_TYPE' });
  });

  it('keeps up with a hundred thousand queued rows', async () => {
    const portal = await drainablePortal();
    const enqueued = await emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: 100_000,
      notify: false,
    });
    expect(enqueued.inserted).toBe(100_000);

    const page = await portal.get({ clear: 0, limit: 50 });
    expect(page.body.result.events.map((event) => Number(event.ID))).toEqual(
      Array.from({ length: 50 }, (_, index) => index + 1),
    );
    expect((await portal.list()).body.total).toBe(100_000);
  });
});

describe('offline row merging', () => {
  it('merges a repeated event into its waiting row but writes a new row once that row is reserved', async () => {
    const portal = await drainablePortal();
    const twice = await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [dealUpdate(1), dealUpdate(1)],
    });
    expect(twice).toMatchObject({ inserted: 1, merged: 1 });

    const reserved = await portal.get({ clear: 0 });
    const again = await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [dealUpdate(1)],
    });
    expect(again).toMatchObject({ inserted: 1, merged: 0 });

    const rows = (await portal.list()).body.result;
    expect(rows.map((row) => row.PROCESS_ID)).toEqual([reserved.body.result.process_id, '']);
    expect(new Set(rows.map((row) => row.MESSAGE_ID)).size).toBe(1);
  });
});

describe('event.offline.clear', () => {
  it('clears by message_id in preference to id, and always answers true', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [dealUpdate(1), dealUpdate(2)],
    });
    const batch = await portal.get({ clear: 0 });
    const [first, second] = batch.body.result.events;

    const cleared = await portal.call('event.offline.clear', {
      process_id: batch.body.result.process_id,
      id: [Number(first.ID)],
      message_id: [second.MESSAGE_ID],
    });
    expect(cleared.body.result).toBe(true);

    const left = await portal.get({ clear: 0, process_id: batch.body.result.process_id });
    expect(left.body.result.events.map((event) => event.ID)).toEqual([first.ID]);

    const nothing = await portal.call('event.offline.clear', { process_id: 'unknown', id: [999] });
    expect(nothing.body.result).toBe(true);
  });

  it('answers the contract errors for a missing process_id and malformed lists', async () => {
    const portal = await drainablePortal();

    const missing = await portal.call('event.offline.clear', {});
    expect(missing.status).toBe(400);
    expect(missing.body.error_description).toBe("Argument 'PROCESS_ID' is null or empty");

    const shortId = await portal.call('event.offline.clear', {
      process_id: 'p',
      message_id: ['abc'],
    });
    expect(shortId.body.error_description).toBe('Value must be array of MESSAGE_ID values');

    const badIds = await portal.call('event.offline.clear', { process_id: 'p', id: [0] });
    expect(badIds.body.error_description).toBe('Value must be array of integers');
  });
});

describe('event.offline.error', () => {
  it('releases the named batch rows as error rows and leaves the rest reserved', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [dealUpdate(1), dealUpdate(2)],
    });
    const batch = await portal.get({ clear: 0 });
    const [failed, kept] = batch.body.result.events;

    const marked = await portal.call('event.offline.error', {
      process_id: batch.body.result.process_id,
      message_id: [failed.MESSAGE_ID],
    });
    expect(marked.body.result).toBe(true);

    const rows = (await portal.list()).body.result;
    expect(rows.find((row) => row.ID === failed.ID)).toMatchObject({ ERROR: '1', PROCESS_ID: '' });
    expect(rows.find((row) => row.ID === kept.ID)).toMatchObject({
      ERROR: '0',
      PROCESS_ID: batch.body.result.process_id,
    });
    expect((await portal.get({ clear: 0 })).body.result.events).toEqual([]);
    expect((await portal.get({ error: 1 })).body.result.events.map((event) => event.ID)).toEqual([
      failed.ID,
    ]);
  });

  it('refuses a call without a message_id list', async () => {
    const portal = await drainablePortal();
    const refused = await portal.call('event.offline.error', { process_id: 'p' });

    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('ERROR_ARGUMENT');
  });
});

describe('event.offline.list', () => {
  it('pages 50 rows at a time with total and next', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120 });

    const first = await portal.list();
    expect(first.body.result).toHaveLength(50);
    expect(first.body).toMatchObject({ total: 120, next: 50 });
    expect(first.body.result[0]).toMatchObject({ PROCESS_ID: '', ERROR: '0' });

    const last = await portal.list({ start: 100 });
    expect(last.body.result).toHaveLength(20);
    expect(last.body.total).toBe(120);
    expect(last.body).not.toHaveProperty('next');
  });

  it('finds reserved batches with a ">PROCESS_ID" filter sent as a form body', async () => {
    const portal = await drainablePortal();
    await emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5 });
    const batch = await portal.get({ clear: 0, limit: 3 });

    const response = await fetch(`${portal.clientEndpoint}event.offline.list`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: qs.stringify({ auth: portal.accessToken, filter: { '>PROCESS_ID': '' } }),
    });
    const listed = (await response.json()) as Envelope<OfflineEvent[]>;

    expect(listed.total).toBe(3);
    expect(listed.result.map((row) => row.PROCESS_ID)).toEqual(
      Array(3).fill(batch.body.result.process_id),
    );
  });
});

describe('reserved row purge', () => {
  it('purges reserved rows whose last write is older than 2952000 seconds, and only those', async () => {
    const clock = new ManualClock();
    const running = await startEmulator({ ...CLIENT, clock });
    try {
      const portal = await drainablePortal({}, running);
      await running.control.enqueueOfflineEvents(portal.memberId, { count: 2 });
      await portal.get({ clear: 0, limit: 1 });
      clock.advance(2_952_001_000);

      expect(await running.control.purgeReserved(portal.memberId)).toEqual({ purged: 1 });
      expect((await running.control.stats(portal.memberId)).queue).toEqual({
        unreserved: 1,
        reserved: 0,
        error: 0,
        total: 1,
      });
    } finally {
      await running.close();
    }
  });
});
