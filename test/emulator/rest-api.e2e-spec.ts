import {
  startEmulator,
  type CreatePortalRequest,
  type PortalFaults,
  type RunningEmulator,
} from '../../src/emulator';

const CLIENT = { clientId: 'test.app', clientSecret: 'test-secret' };
const CLIENT_FORM = { client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret };
const HANDLER = 'http://127.0.0.1:9/bitrix24/events';

interface Envelope<T> {
  result: T;
  total?: number;
  next?: number;
  time?: Record<string, unknown>;
  error?: string;
  error_description?: string;
}

interface Answer<T> {
  status: number;
  body: Envelope<T>;
}

interface BatchResult {
  result: Record<string, unknown> | unknown[];
  result_error: Record<string, { error: string; error_description: string }> | unknown[];
  result_total: Record<string, number> | unknown[];
  result_next: Record<string, number> | unknown[];
  result_time: Record<string, Record<string, unknown>> | unknown[];
}

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator(CLIENT);
});

afterAll(() => emulator.close());

async function installedPortal(request: CreatePortalRequest = {}, finish = true) {
  const portal = await emulator.control.createPortal(request);
  const { form } = await emulator.control.install(portal.memberId, { mode: 'ui' });
  if (finish) await emulator.control.finishInstall(portal.memberId);
  const call = async <T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    token = form.AUTH_ID,
  ): Promise<Answer<T>> => {
    const response = await fetch(`${portal.clientEndpoint}${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...params, auth: token }),
    });
    return { status: response.status, body: (await response.json()) as Envelope<T> };
  };
  return { ...portal, call };
}

async function plainUserToken(memberId: string, userId: number): Promise<string> {
  const { code } = await emulator.control.createAuthorizationCode(memberId, {
    userId,
    admin: false,
  });
  const query = new URLSearchParams({
    grant_type: 'authorization_code',
    client_id: CLIENT.clientId,
    client_secret: CLIENT.clientSecret,
    code,
  });
  const response = await fetch(`${emulator.url}/oauth/token/?${query.toString()}`);
  return ((await response.json()) as { access_token: string }).access_token;
}

describe('envelopes and app methods', () => {
  it('wraps a result in the envelope with the full time block', async () => {
    const portal = await installedPortal();
    const { status, body } = await portal.call('app.info');

    expect(status).toBe(200);
    expect(Object.keys(body.time ?? {}).sort()).toEqual(
      [
        'date_finish',
        'date_start',
        'duration',
        'finish',
        'operating',
        'operating_reset_at',
        'processing',
        'start',
      ].sort(),
    );
    expect(body.time?.date_start).toMatch(/\+03:00$/);
  });

  it('describes the app, its features and the user as the contract shows', async () => {
    const portal = await installedPortal({
      appStatus: 'T',
      days: 5,
      features: { rest_auth_connector: true },
    });

    expect((await portal.call('app.info')).body.result).toEqual({
      ID: 1,
      CODE: CLIENT.clientId,
      VERSION: 1,
      STATUS: 'T',
      INSTALLED: true,
      PAYMENT_EXPIRED: 'N',
      DAYS: 5,
      LANGUAGE_ID: 'en',
      LICENSE: 'en_std',
      LICENSE_TYPE: 'std',
      LICENSE_FAMILY: 'std',
    });
    expect((await portal.call('feature.get', { CODE: 'rest_auth_connector' })).body.result).toEqual(
      {
        value: 'Y',
      },
    );
    const noCode = await portal.call('feature.get');
    expect(noCode.status).toBe(400);
    expect(noCode.body.error).toBe('CODE_EMPTY');
    expect((await portal.call('profile')).body.result).toMatchObject({ ID: '1', ADMIN: true });
  });

  it('answers user.admin true for the installing admin and false for a plain user, whose refreshed chain stays theirs', async () => {
    const portal = await installedPortal();
    const plainToken = await plainUserToken(portal.memberId, 9);

    const admin = await portal.call<boolean>('user.admin');
    expect(admin.status).toBe(200);
    expect(admin.body.result).toBe(true);
    expect(admin.body.time).toBeDefined();
    expect((await portal.call<boolean>('user.admin', {}, plainToken)).body.result).toBe(false);

    // A plain user's session chain, refreshed, still belongs to that user.
    const { code } = await emulator.control.createAuthorizationCode(portal.memberId, {
      userId: 9,
    });
    const exchange = async (params: Record<string, string>) => {
      const response = await fetch(`${emulator.url}/oauth/token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...CLIENT_FORM, ...params }).toString(),
      });
      return (await response.json()) as { access_token: string; refresh_token: string };
    };
    const session = await exchange({ grant_type: 'authorization_code', code });
    const refreshed = await exchange({
      grant_type: 'refresh_token',
      refresh_token: session.refresh_token,
    });
    expect((await portal.call('user.admin', {}, refreshed.access_token)).body.result).toBe(false);

    // Made an admin later, the same user's tokens answer true.
    await emulator.control.createAuthorizationCode(portal.memberId, { userId: 9, admin: true });
    expect((await portal.call('user.admin', {}, refreshed.access_token)).body.result).toBe(true);
  });

  it('reports INSTALLED false until installation is finished', async () => {
    const portal = await installedPortal({}, false);
    expect((await portal.call('app.info')).body.result).toMatchObject({ INSTALLED: false });

    await emulator.control.finishInstall(portal.memberId);
    expect((await portal.call('app.info')).body.result).toMatchObject({ INSTALLED: true });
  });

  it('answers an unknown method 404 ERROR_METHOD_NOT_FOUND', async () => {
    const portal = await installedPortal();
    const unknown = await portal.call('no.such.method');

    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      error: 'ERROR_METHOD_NOT_FOUND',
      error_description: 'Method not found!',
    });
  });
});

describe('leaky bucket', () => {
  it('counts a batch once and refuses requests over the limit with 503 QUERY_LIMIT_EXCEEDED', async () => {
    const portal = await installedPortal();
    await emulator.control.setFaults(portal.memberId, { rateLimit: { rps: 0, burst: 2 } });
    const cmd = Object.fromEntries(
      Array.from({ length: 10 }, (_, index) => [`c${index}`, 'app.info']),
    );

    expect((await portal.call('batch', { cmd })).status).toBe(200);
    expect((await portal.call('profile')).status).toBe(200);
    const refused = await portal.call('profile');

    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      error: 'QUERY_LIMIT_EXCEEDED',
      error_description: 'Too many requests',
    });
    const stats = await emulator.control.stats(portal.memberId);
    expect(stats).toMatchObject({ httpRequests: 3, rateLimitRefusals: 1 });
    expect(stats.restCalls['app.info']).toBe(10);
  });
});

describe('batch', () => {
  it('answers each command with its result or error, totals, times and resolved references', async () => {
    const portal = await installedPortal();
    const { status, body } = await portal.call<BatchResult>('batch', {
      cmd: {
        deal: 'crm.deal.add?fields[TITLE]=First',
        again: 'crm.deal.get?id=$result[deal]',
        bad: 'no.such.method',
        list: 'event.offline.list',
      },
    });

    expect(status).toBe(200);
    expect(body.result.result).toMatchObject({
      deal: 1,
      again: { ID: '1', TITLE: 'First' },
      list: [],
    });
    expect(body.result.result_error).toEqual({
      bad: { error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found!' },
    });
    expect(body.result.result_total).toEqual({ list: 0 });
    expect(body.result.result_next).toEqual([]);
    expect(Object.keys(body.result.result_time)).toEqual(['deal', 'again', 'list']);
  });

  it('answers an array-form batch with JSON lists and stops at the first failure under halt', async () => {
    const portal = await installedPortal();

    const listed = await portal.call<BatchResult>('batch', { cmd: ['app.info', 'profile'] });
    expect(Array.isArray(listed.body.result.result)).toBe(true);
    expect(listed.body.result.result).toHaveLength(2);
    expect(listed.body.result.result_error).toEqual([]);

    const halted = await portal.call<BatchResult>('batch', {
      halt: 1,
      cmd: ['app.info', 'no.such.method', 'profile'],
    });
    expect(halted.body.result.result).toHaveLength(1);
    expect(halted.body.result.result_error).toEqual({
      1: { error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found!' },
    });
  });

  it('gives commands beyond 50 ERROR_BATCH_LENGTH_EXCEEDED and refuses a nested batch', async () => {
    const portal = await installedPortal();
    const cmd = Array.from({ length: 52 }, () => 'profile');
    cmd[3] = 'batch?cmd[a]=profile';

    const { status, body } = await portal.call<BatchResult>('batch', { cmd });

    expect(status).toBe(200);
    const errors = body.result.result_error as Record<string, { error: string }>;
    expect(Object.keys(errors)).toEqual(['3', '50', '51']);
    expect(errors['3'].error).toBe('ERROR_BATCH_METHOD_NOT_ALLOWED');
    expect(errors['50'].error).toBe('ERROR_BATCH_LENGTH_EXCEEDED');
    expect(Object.keys(body.result.result)).toHaveLength(49);
  });
});

describe('event.bind, event.unbind and event.get', () => {
  it('binds a handler once and refuses the duplicate with ERROR_CORE', async () => {
    const portal = await installedPortal();
    const params = { event: 'onCrmDealAdd', handler: HANDLER };

    expect((await portal.call('event.bind', params)).body.result).toBe(true);
    const duplicate = await portal.call('event.bind', params);

    expect(duplicate.status).toBe(400);
    expect(duplicate.body).toEqual({
      error: 'ERROR_CORE',
      error_description: 'Unable to set event handler: Handler already binded',
    });
  });

  it('refuses bad handler URLs, unknown events and offline ONOFFLINEEVENT with the contract codes', async () => {
    const portal = await installedPortal();
    const bind = async (params: Record<string, unknown>) =>
      (await portal.call('event.bind', params)).body.error;

    expect(await bind({ event: 'ONCRMDEALADD', handler: 'http://localhost:3000/x' })).toBe(
      'ERROR_WRONG_HANDLER_URL',
    );
    expect(await bind({ event: 'ONCRMDEALADD', handler: 'ftp://files.example.com/x' })).toBe(
      'ERROR_UNSUPPORTED_PROTOCOL',
    );
    expect(await bind({ event: 'ONTASKADD', handler: HANDLER })).toBe('ERROR_EVENT_NOT_FOUND');
    expect(await bind({ event: 'ONNOSUCHTHING', handler: HANDLER })).toBe('ERROR_EVENT_NOT_FOUND');
    expect(await bind({ event: 'ONOFFLINEEVENT', event_type: 'offline' })).toBe('ERROR_ARGUMENT');
    expect(await bind({ event: 'ONCRMDEALADD', event_type: 'sometimes', handler: HANDLER })).toBe(
      'ERROR_ARGUMENT',
    );
    expect(await bind({ event: 'ONCRMDEALADD' })).toBe('ERROR_ARGUMENT');
  });

  it('lists bindings and unbinds them with a count', async () => {
    const portal = await installedPortal();
    await portal.call('event.bind', { event: 'ONCRMDEALADD', handler: HANDLER });
    await portal.call('event.bind', { event: 'ONCRMDEALADD', event_type: 'offline' });
    await portal.call('event.bind', {
      event: 'ONOFFLINEEVENT',
      handler: HANDLER,
      options: { minTimeout: 5 },
    });

    expect((await portal.call('event.get')).body.result).toEqual([
      { event: 'ONCRMDEALADD', handler: HANDLER, auth_type: '0', offline: 0 },
      { event: 'ONCRMDEALADD', connector_id: '', offline: 1 },
      { event: 'ONOFFLINEEVENT', handler: HANDLER, auth_type: '0', offline: 0 },
    ]);
    expect((await emulator.control.stats(portal.memberId)).bindings[2].options).toEqual({
      minTimeout: 5,
    });

    const unbound = await portal.call('event.unbind', { event: 'ONCRMDEALADD', handler: HANDLER });
    expect(unbound.body.result).toEqual({ count: 1 });
    const again = await portal.call('event.unbind', { event: 'ONCRMDEALADD', handler: HANDLER });
    expect(again.body.result).toEqual({ count: 0 });
  });

  it('refuses offline binding by a user who is not an admin with 403', async () => {
    const portal = await installedPortal();
    const token = await plainUserToken(portal.memberId, 12);

    const refused = await portal.call(
      'event.bind',
      { event: 'ONCRMDEALADD', event_type: 'offline' },
      token,
    );

    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: 'ACCESS_DENIED',
      error_description:
        'Access denied! Offline events binding requires administrator access rights',
    });
    const online = await portal.call(
      'event.bind',
      { event: 'ONCRMDEALADD', handler: HANDLER },
      token,
    );
    expect(online.body.result).toBe(true);
    expect((await emulator.control.stats(portal.memberId)).bindings[0].userId).toBe(12);
  });
});

describe('fault switches', () => {
  it('answers 500, overload, a deleted portal, insufficient scope and a wrong license until cleared', async () => {
    const portal = await installedPortal();
    const answerWith = async (faults: PortalFaults) => {
      await emulator.control.setFaults(portal.memberId, faults);
      const { status, body } = await portal.call('profile');
      return [status, body.error];
    };

    expect(await answerWith({ errorRate: 1 })).toEqual([500, 'INTERNAL_SERVER_ERROR']);
    expect(await answerWith({ overload: true })).toEqual([503, 'OVERLOAD_LIMIT']);
    expect(await answerWith({ portalDeleted: true })).toEqual([403, 'PORTAL_DELETED']);
    expect(await answerWith({ insufficientScope: 403 })).toEqual([403, 'insufficient_scope']);
    expect(await answerWith({ wrongLicense: true })).toEqual([403, 'WRONG_LICENSE']);

    await emulator.control.clearFaults(portal.memberId);
    expect((await portal.call('profile')).status).toBe(200);
  });

  it('limits faults to the named methods, nested batch commands included', async () => {
    const portal = await installedPortal();
    await portal.call('event.bind', { event: 'ONCRMDEALADD', event_type: 'offline' });
    await emulator.control.setFaults(portal.memberId, {
      errorRate: 1,
      methods: ['event.offline.get'],
    });

    expect((await portal.call('profile')).status).toBe(200);
    expect((await portal.call('event.offline.get')).status).toBe(500);
    const batch = await portal.call<BatchResult>('batch', {
      cmd: { get: 'event.offline.get', me: 'profile' },
    });
    expect(batch.status).toBe(200);
    expect(batch.body.result.result_error).toEqual({
      get: { error: 'INTERNAL_SERVER_ERROR', error_description: 'Internal server error' },
    });
    expect(batch.body.result.result).toHaveProperty('me');
  });

  it('carries out a timed-out request but never answers it', async () => {
    const portal = await installedPortal();
    await emulator.control.setFaults(portal.memberId, {
      timeoutRate: 1,
      methods: ['crm.deal.add'],
    });
    const client = new AbortController();

    const lost = fetch(`${portal.clientEndpoint}crm.deal.add`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: (await emulator.control.tokens(portal.memberId)).accessTokens[0],
      }),
      signal: client.signal,
    });
    while ((await emulator.control.stats(portal.memberId)).restCalls['crm.deal.add'] !== 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.abort();

    await expect(lost).rejects.toThrow();
    const stored = await portal.call('crm.deal.get', { id: 1 });
    expect(stored.body.result).toMatchObject({ ID: '1' });
  });

  it('blocks a method over its operating-time budget with 429, and only that method', async () => {
    const portal = await installedPortal();
    await emulator.control.setFaults(portal.memberId, {
      latencyMs: 50,
      operatingLimitSeconds: 0.01,
      methods: ['app.info'],
    });

    expect((await portal.call('app.info')).status).toBe(200);
    const blocked = await portal.call('app.info');
    expect(blocked.status).toBe(429);
    expect(blocked.body.error).toBe('OPERATION_TIME_LIMIT');
    expect((await portal.call('profile')).status).toBe(200);
  });

  it('records the most event.offline.get requests in flight at once', async () => {
    const portal = await installedPortal();
    await portal.call('event.bind', { event: 'ONCRMDEALADD', event_type: 'offline' });
    await emulator.control.setFaults(portal.memberId, {
      latencyMs: 1500,
      methods: ['event.offline.get'],
    });

    await Promise.all([1, 2, 3].map(() => portal.call('event.offline.get', { clear: 0 })));
    await portal.call('batch', { cmd: { get: 'event.offline.get?clear=0' } });

    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.maxConcurrentOfflineGet).toBe(3);
    expect(stats.concurrentOfflineGetNow).toBe(0);
    expect(stats.restCalls['event.offline.get']).toBe(4);
  });
});
