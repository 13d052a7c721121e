import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { PortalNotActiveError } from '../../src/bitrix24/bitrix24-api.error';
import {
  errorBody,
  eventually,
  formBody,
  genuineEventBody,
  Harness,
  installViaEvent,
  installViaUi,
  portalRow,
  postEvent,
  postForm,
  postJsonEvent,
  startHarness,
  tableCounts,
  tokenRow,
} from './webhook-harness';
import { startTestApp } from '../support/test-app';

describe('POST /bitrix24/events', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  async function storedEvents(memberId: string): Promise<{ event_name: string; data: unknown }[]> {
    const { rows } = await h.sql.query<{ event_name: string; data: unknown }>(
      `SELECT event_name, data FROM stored_events WHERE member_id = $1 AND source = 'online' ORDER BY id`,
      [memberId],
    );
    return rows;
  }

  describe('a genuine online event', () => {
    it('is stored once, however many times it is delivered', async () => {
      const portal = await installViaEvent(h);
      const body = genuineEventBody(portal, 'ONCRMDEALUPDATE', {
        data: { FIELDS: { ID: '42' } },
        auth: { access_token: 'useraccesstoken', expires_in: '3600', user_id: '5' },
      });

      const first = await postEvent(h, body);
      const second = await postEvent(h, body);

      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ outcome: 'stored' });
      expect(await second.json()).toEqual({ outcome: 'duplicate' });
      expect(await storedEvents(portal.memberId)).toEqual([
        { event_name: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '42' } } },
      ]);
    });

    it('keeps two real changes of one deal in the same second (each delivery has its own token)', async () => {
      const portal = await installViaEvent(h);
      const ts = Math.floor(Date.now() / 1000);
      const delivery = (accessToken: string): string =>
        genuineEventBody(portal, 'ONCRMDEALUPDATE', {
          ts,
          data: { FIELDS: { ID: '77' } },
          auth: { access_token: accessToken, expires_in: '3600', user_id: '5' },
        });

      const first = await postEvent(h, delivery('firstdeliverytoken'));
      const second = await postEvent(h, delivery('seconddeliverytoken'));
      const resent = await postEvent(h, delivery('seconddeliverytoken'));

      expect(await first.json()).toEqual({ outcome: 'stored' });
      expect(await second.json()).toEqual({ outcome: 'stored' });
      expect(await resent.json()).toEqual({ outcome: 'duplicate' });
      expect(await storedEvents(portal.memberId)).toHaveLength(2);
    });

    it('is accepted with unencoded brackets, as JSON, without data, and without OAuth tokens (robots)', async () => {
      const portal = await installViaEvent(h);
      const auth = `auth[member_id]=${portal.memberId}&auth[application_token]=${portal.applicationToken}`;

      const raw = await postEvent(h, `event=ONCRMLEADADD&data[FIELDS][ID]=1&ts=1700000001&${auth}`);
      const json = await postJsonEvent(h, {
        event: 'ONCRMLEADADD',
        data: { FIELDS: { ID: 2 } },
        ts: 1700000002,
        auth: { member_id: portal.memberId, application_token: portal.applicationToken },
      });
      const noData = await postEvent(h, `event=ONCRMLEADADD&ts=1700000003&${auth}`);

      expect([raw.status, json.status, noData.status]).toEqual([200, 200, 200]);
      expect(await storedEvents(portal.memberId)).toEqual([
        { event_name: 'ONCRMLEADADD', data: { FIELDS: { ID: '1' } } },
        { event_name: 'ONCRMLEADADD', data: { FIELDS: { ID: 2 } } },
        { event_name: 'ONCRMLEADADD', data: null },
      ]);
    });
  });

  it('asks the drain to run for a genuine ONOFFLINEEVENT and answers before any Bitrix24 call', async () => {
    const portal = await installViaEvent(h);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 3 });
    // The emulator posts the notification in the background: wait for our answer to reach it.
    const notification = await eventually(async () =>
      (await h.emulator.control.sent(portal.memberId)).find(
        (sent) => sent.event === 'ONOFFLINEEVENT' && sent.status !== null,
      ),
    );
    expect(notification.status).toBe(200);
    expect(JSON.parse(notification.responseBody)).toEqual({ outcome: 'drain_requested' });

    // With event.offline.get taking 1.5 s, the notification is still answered at once.
    await h.emulator.control.setFaults(portal.memberId, {
      latencyMs: 1500,
      methods: ['event.offline.get'],
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1, notify: false });
    const offlineGets = async (): Promise<number> =>
      (await h.emulator.control.stats(portal.memberId)).restCalls['event.offline.get'] ?? 0;
    const before = await offlineGets();
    const startedAt = performance.now();
    const replayed = await postEvent(h, notification.body);
    const elapsedMs = performance.now() - startedAt;

    expect(replayed.status).toBe(200);
    expect(elapsedMs).toBeLessThan(500);
    await eventually(async () => ((await offlineGets()) > before ? true : undefined));
    await h.emulator.control.clearFaults(portal.memberId);
  });

  describe('a forged event', () => {
    it('gets the same 401 for a wrong token, an unknown portal and a portal that is not active, and changes nothing', async () => {
      const active = await installViaEvent(h);
      const gone = await installViaEvent(h);
      await h.emulator.control.uninstall(gone.memberId);
      const stranger = await h.emulator.control.createPortal();
      const counts = await tableCounts(h);

      const answers = await Promise.all(
        [
          genuineEventBody(active, 'ONCRMDEALADD', {
            data: { FIELDS: { ID: '1' } },
            auth: { application_token: 'wrongtoken' },
          }),
          genuineEventBody(active, 'ONOFFLINEEVENT', {
            // One character off (never the same one, or the token would be the genuine one).
            auth: {
              application_token: `${active.applicationToken.slice(0, -1)}${active.applicationToken.endsWith('0') ? '1' : '0'}`,
            },
          }),
          genuineEventBody(stranger, 'ONCRMDEALADD', { data: { FIELDS: { ID: '1' } } }),
          genuineEventBody(gone, 'ONCRMDEALADD', { data: { FIELDS: { ID: '1' } } }),
          genuineEventBody(gone, 'ONOFFLINEEVENT'),
        ].map(async (body) => {
          const response = await postEvent(h, body);
          return { status: response.status, body: await response.json() };
        }),
      );

      for (const answer of answers) {
        expect(answer).toEqual({
          status: 401,
          body: {
            error: { code: 'event_not_verified', message: 'The event could not be verified' },
          },
        });
      }
      expect(await tableCounts(h)).toEqual(counts);
    });

    it('uninstall (wrong application token) gets 401 and the portal keeps its status, tokens and bindings', async () => {
      const portal = await installViaEvent(h);
      const before = await portalRow(h, portal.memberId);
      const tokensBefore = await tokenRow(h, portal.memberId);

      const response = await postEvent(
        h,
        genuineEventBody(portal, 'ONAPPUNINSTALL', {
          data: { LANGUAGE_ID: 'en', CLEAN: '1' },
          auth: { application_token: 'forgeduninstalltoken' },
        }),
      );

      expect(response.status).toBe(401);
      expect((await errorBody(response)).error.code).toBe('event_not_verified');
      const after = await portalRow(h, portal.memberId);
      expect(after?.status).toBe('active');
      expect(after?.bound_events).toEqual(before?.bound_events);
      expect(await tokenRow(h, portal.memberId)).toEqual(tokensBefore);
    });
  });

  describe('a genuine uninstall', () => {
    it('wipes the tokens in the table, forgets the bindings, keeps the events and stops all traffic', async () => {
      const { portal } = await installViaUi(h);
      await postEvent(
        h,
        genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '9' } } }),
      );

      const { delivered } = await h.emulator.control.uninstall(portal.memberId, { clean: true });

      expect(delivered.map((answer) => answer.status)).toEqual([200]);
      const row = await portalRow(h, portal.memberId);
      expect(row).toMatchObject({ status: 'uninstalled', bound_events: [], bound_at: null });
      expect(row?.uninstalled_at).toBeInstanceOf(Date);
      const { rows } = await h.sql.query(
        `SELECT access_token, refresh_token, access_expires_at, refresh_expires_at, key_id
           FROM portal_tokens WHERE member_id = $1`,
        [portal.memberId],
      );
      expect(rows).toEqual([
        {
          access_token: null,
          refresh_token: null,
          access_expires_at: null,
          refresh_expires_at: null,
          key_id: null,
        },
      ]);
      // UNINSTALL_CLEAN_EVENTS defaults to keep: CLEAN=1 does not purge.
      expect(await storedEvents(portal.memberId)).toHaveLength(1);

      const callsBefore = (await h.emulator.control.stats(portal.memberId)).httpRequests;
      const notification = await postEvent(h, genuineEventBody(portal, 'ONOFFLINEEVENT'));
      expect(notification.status).toBe(401);
      await expect(
        h.app.app.get(Bitrix24Client).operationsFor(portal.memberId).eventGet(),
      ).rejects.toBeInstanceOf(PortalNotActiveError);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(callsBefore);

      const repeated = await postEvent(
        h,
        genuineEventBody(portal, 'ONAPPUNINSTALL', { data: { LANGUAGE_ID: 'en', CLEAN: '0' } }),
      );
      expect(await repeated.json()).toEqual({ outcome: 'duplicate_uninstall' });
    });
  });

  it('stops accepting an uninstalled portal on another replica within its few seconds of cache', async () => {
    const portal = await installViaEvent(h);
    const replica = await startTestApp({
      databaseUrl: h.database.url,
      env: { BITRIX24_OAUTH_URL: h.emulator.url },
    });
    try {
      const body = genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '8' } } });
      const atReplica = (): Promise<Response> => postForm(`${replica.url}/bitrix24/events`, body);
      expect((await atReplica()).status).toBe(200);

      // ONAPPUNINSTALL reaches the first instance (the bound handler URL), not the replica.
      await h.emulator.control.uninstall(portal.memberId);
      const uninstalledAt = Date.now();
      const refusedAt = await eventually(
        async () => ((await atReplica()).status === 401 ? Date.now() : undefined),
        10_000,
      );

      expect(refusedAt - uninstalledAt).toBeLessThan(6000);
      expect(await storedEvents(portal.memberId)).toHaveLength(1);
    } finally {
      await replica.close();
    }
  });

  it('never writes a token it saw to its logs', async () => {
    const portal = await installViaEvent(h);
    await postEvent(h, genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '3' } } }));
    await h.emulator.control.uninstall(portal.memberId);

    const issued = await h.emulator.control.tokens();
    const logs = h.app.logs.join('\n');
    for (const token of [
      ...issued.accessTokens,
      ...issued.refreshTokens,
      ...issued.applicationTokens,
    ]) {
      expect(logs).not.toContain(token);
    }
  });
});

describe('POST /bitrix24/events with UNINSTALL_CLEAN_EVENTS=purge', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ UNINSTALL_CLEAN_EVENTS: 'purge' });
  });

  afterAll(async () => {
    await h?.close();
  });

  async function eventCount(memberId: string): Promise<number> {
    const { rows } = await h.sql.query<{ count: string }>(
      'SELECT count(*) FROM stored_events WHERE member_id = $1',
      [memberId],
    );
    return Number(rows[0].count);
  }

  it('purges the stored events when the portal asks for CLEAN=1, and keeps them otherwise', async () => {
    const cleaned = await installViaEvent(h);
    const kept = await installViaEvent(h);
    for (const portal of [cleaned, kept]) {
      const response = await postEvent(
        h,
        formBody({
          event: 'ONCRMDEALADD',
          data: { FIELDS: { ID: '1' } },
          auth: { member_id: portal.memberId, application_token: portal.applicationToken },
        }),
      );
      expect(response.status).toBe(200);
    }

    await h.emulator.control.uninstall(cleaned.memberId, { clean: true });
    await h.emulator.control.uninstall(kept.memberId, { clean: false });

    expect(await eventCount(cleaned.memberId)).toBe(0);
    expect(await eventCount(kept.memberId)).toBe(1);
    expect((await portalRow(h, cleaned.memberId))?.status).toBe('uninstalled');
  });
});
