import { setTimeout as sleep } from 'node:timers/promises';
import {
  Bitrix24ApiError,
  OAuthError,
  PortalNotActiveError,
} from '../../src/bitrix24/bitrix24-api.error';
import { InvalidInputError } from '../../src/errors/domain-error';
import { installPortalDirectly } from '../support/portal-fixtures';
import { freePort } from '../support/test-app';
import {
  Bitrix24Harness,
  portalStatus,
  restClient,
  startBitrix24Harness,
  tokensInLogs,
  vaultOf,
} from './bitrix24-harness';

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );
}

describe('Bitrix24 errors and what the client does about each', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness({ env: { BITRIX24_REQUEST_TIMEOUT_MS: '1000' } });
  });

  afterAll(async () => {
    await h?.close();
  });

  describe('retryable: back off and try again, a bounded number of times', () => {
    it('retries a 500 until the portal recovers', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      await h.emulator.control.setFaults(portal.memberId, { errorRate: 1 });
      const call = restClient(h.app, portal.memberId).appInfo();
      await sleep(300);
      await h.emulator.control.clearFaults(portal.memberId);

      await expect(call).resolves.toMatchObject({ INSTALLED: true });
      expect(
        (await h.emulator.control.stats(portal.memberId)).restCalls['app.info'],
      ).toBeGreaterThan(1);
    });

    it.each([
      ['INTERNAL_SERVER_ERROR', { errorRate: 1 }],
      ['OVERLOAD_LIMIT', { overload: true }],
    ])('gives up on a persistent %s after 5 tries', async (code, faults) => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      await h.emulator.control.setFaults(portal.memberId, faults);

      const failure = await failureOf(restClient(h.app, portal.memberId).appInfo());

      expect(failure).toBeInstanceOf(Bitrix24ApiError);
      expect(failure).toMatchObject({
        bitrixCode: code,
        category: 'retryable',
        method: 'app.info',
      });
      expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(5);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    });

    it('retries a request whose answer never comes (timeout) until one does', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      await h.emulator.control.setFaults(portal.memberId, { timeoutRate: 1 });
      const call = restClient(h.app, portal.memberId).appInfo();
      await sleep(1500);
      await h.emulator.control.clearFaults(portal.memberId);

      await expect(call).resolves.toMatchObject({ INSTALLED: true });
      expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBeGreaterThanOrEqual(
        2,
      );
    });

    it('gives up on a portal that cannot be reached after 5 tries, saying why', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      const unreachable = `http://127.0.0.1:${await freePort()}/${portal.domain}/rest/`;
      await h.sql.query('UPDATE portals SET client_endpoint = $2 WHERE member_id = $1', [
        portal.memberId,
        unreachable,
      ]);

      const failure = await failureOf(restClient(h.app, portal.memberId).appInfo());

      expect(failure).toMatchObject({
        bitrixCode: 'NETWORK_ERROR',
        category: 'retryable',
        httpStatus: 0,
        description: 'ECONNREFUSED',
      });
    });

    it('parks a method blocked by OPERATION_TIME_LIMIT until its window resets; other methods go on', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      await h.emulator.control.setFaults(portal.memberId, {
        operatingLimitSeconds: 0,
        latencyMs: 20,
        methods: ['app.info'],
      });
      const client = restClient(h.app, portal.memberId);
      await client.appInfo();

      // The window (operating_reset_at of the last answer) resets minutes from now: not retried.
      const failure = await failureOf(client.appInfo());
      expect(failure).toMatchObject({ bitrixCode: 'OPERATION_TIME_LIMIT', category: 'retryable' });
      expect((await h.emulator.control.stats(portal.memberId)).restCalls['app.info']).toBe(1 + 1);

      // Parked: the next call of that method is answered here, nothing goes to Bitrix24.
      const parked = await failureOf(client.appInfo());
      expect(parked).toMatchObject({ bitrixCode: 'OPERATION_TIME_LIMIT', category: 'retryable' });
      expect((await h.emulator.control.stats(portal.memberId)).restCalls['app.info']).toBe(1 + 1);

      await expect(client.featureGet('rest_offline_extended')).resolves.toBe(true);
    }, 30_000);
  });

  describe('auth: one refresh, one retry', () => {
    it('refreshes an expired token once and retries', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      const client = restClient(h.app, portal.memberId);
      await client.appInfo();
      await h.emulator.control.expireTokens(portal.memberId);
      const before = await h.emulator.control.stats(portal.memberId);

      await expect(client.appInfo()).resolves.toMatchObject({ INSTALLED: true });

      const after = await h.emulator.control.stats(portal.memberId);
      expect(after.refreshes - before.refreshes).toBe(1);
      expect(after.httpRequests - before.httpRequests).toBe(2);
    });

    it('gives up when the fresh token is rejected too', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      const other = await installPortalDirectly(h.emulator, h.app);
      // Our tokens presented to another portal: NO_AUTH_FOUND whatever we refresh.
      await h.sql.query('UPDATE portals SET client_endpoint = $2 WHERE member_id = $1', [
        portal.memberId,
        other.clientEndpoint,
      ]);
      const before = await h.emulator.control.stats(portal.memberId);

      const failure = await failureOf(restClient(h.app, portal.memberId).appInfo());

      expect(failure).toMatchObject({ bitrixCode: 'NO_AUTH_FOUND', category: 'auth' });
      const after = await h.emulator.control.stats(portal.memberId);
      expect(after.refreshes - before.refreshes).toBe(1);
      expect((await h.emulator.control.stats(other.memberId)).httpRequests).toBe(2);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    });
  });

  describe('portal gone: the status changes and traffic stops', () => {
    it.each([
      [
        'PORTAL_DELETED',
        (memberId: string) => h.emulator.control.setFaults(memberId, { portalDeleted: true }),
      ],
      ['APPLICATION_NOT_FOUND', (memberId: string) => h.emulator.control.uninstall(memberId)],
    ])('%s: uninstalled, tokens wiped, no further request', async (code, breakPortal) => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      const client = restClient(h.app, portal.memberId);
      await client.appInfo();
      await breakPortal(portal.memberId);

      const failure = await failureOf(client.appInfo());

      expect(failure).toMatchObject({ bitrixCode: code, category: 'portal_gone' });
      expect(await portalStatus(h.sql, portal.memberId)).toBe('uninstalled');
      const { rows } = await h.sql.query(
        'SELECT access_token, refresh_token FROM portal_tokens WHERE member_id = $1',
        [portal.memberId],
      );
      expect(rows).toEqual([{ access_token: null, refresh_token: null }]);
      const before = await h.emulator.control.stats(portal.memberId);
      await expect(client.appInfo()).rejects.toBeInstanceOf(PortalNotActiveError);
      expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(
        before.httpRequests,
      );
    });

    it('PAYMENT_REQUIRED at refresh: payment_required, traffic stops, and a later refresh restores it', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      const client = restClient(h.app, portal.memberId);
      await client.appInfo();
      await h.emulator.control.setFaults(portal.memberId, { paymentAllowed: false });
      await h.emulator.control.expireTokens(portal.memberId);

      const failure = await failureOf(client.appInfo());

      expect(failure).toBeInstanceOf(OAuthError);
      expect(failure).toMatchObject({ bitrixCode: 'PAYMENT_REQUIRED', category: 'portal_gone' });
      expect(await portalStatus(h.sql, portal.memberId)).toBe('payment_required');
      await expect(client.appInfo()).rejects.toBeInstanceOf(PortalNotActiveError);

      await h.emulator.control.setFaults(portal.memberId, { paymentAllowed: true });
      await vaultOf(h.app).refresh(portal.memberId);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
      await expect(client.appInfo()).resolves.toMatchObject({ INSTALLED: true });
    });
  });

  describe("caller errors: the caller's to handle, never retried", () => {
    it('WRONG_LICENSE for clear=0 without rest_offline_extended', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app, {
        portal: { features: { rest_offline_extended: false } },
      });

      const failure = await failureOf(
        restClient(h.app, portal.memberId).offlineGet({ limit: 50, clear: false }),
      );

      expect(failure).toMatchObject({
        bitrixCode: 'WRONG_LICENSE',
        category: 'caller',
        kind: 'forbidden',
      });
      const stats = await h.emulator.control.stats(portal.memberId);
      expect(stats.restCalls['event.offline.get']).toBe(1);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    });

    it('ERROR_METHOD_NOT_FOUND for a method the portal does not have', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);

      const failure = await failureOf(restClient(h.app, portal.memberId).call('no.such.method'));

      expect(failure).toMatchObject({ bitrixCode: 'ERROR_METHOD_NOT_FOUND', category: 'caller' });
      expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(1);
    });

    it('refuses a method name that is not one, before any request', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      const client = restClient(h.app, portal.memberId);

      await expect(client.call('../oauth/token')).rejects.toBeInstanceOf(InvalidInputError);
      await expect(client.batch({ a: { method: 'app.info?x=1' } })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(0);
    });

    it('a portal unknown to the database gets no request at all', async () => {
      const created = await h.emulator.control.createPortal();
      await expect(restClient(h.app, created.memberId).appInfo()).rejects.toBeInstanceOf(
        PortalNotActiveError,
      );
      expect((await h.emulator.control.stats(created.memberId)).httpRequests).toBe(0);
    });
  });

  it('keeps every token out of error messages and log lines', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await h.emulator.control.setFaults(portal.memberId, { errorRate: 1 });
    const failure = (await failureOf(restClient(h.app, portal.memberId).appInfo())) as Error;
    const issued = await h.emulator.control.tokens(portal.memberId);

    for (const token of [...issued.accessTokens, ...issued.refreshTokens]) {
      expect(failure.message).not.toContain(token);
      expect(JSON.stringify(failure)).not.toContain(token);
    }
    expect(await tokensInLogs(h.emulator, h.apps)).toEqual([]);
  });
});
