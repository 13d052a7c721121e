import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventBindingService } from '../../src/portals/event-binding.service';
import { PortalInstallSweeper } from '../../src/portals/portal-install-sweeper';
import {
  emulatorBindings,
  eventually,
  expectedBindings,
  formBody,
  freshRefreshToken,
  genuineEventBody,
  Harness,
  installViaEvent,
  installViaUi,
  portalRow,
  postEvent,
  postForm,
  sha256,
  startHarness,
  tableCounts,
  tokenRow,
  errorBody,
} from '../webhooks/webhook-harness';

/** A listener that no installation may ever call: where forged requests point. */
async function startTrap(): Promise<{ url: string; hits: IncomingMessage[]; server: Server }> {
  const hits: IncomingMessage[] = [];
  const server = createServer((request, response) => {
    hits.push(request);
    response.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, server };
}

describe('installation lifecycle over HTTP, against the emulator', () => {
  let h: Harness;
  let trap: Awaited<ReturnType<typeof startTrap>>;

  beforeAll(async () => {
    // Every request here comes from 127.0.0.1 and many are refused on purpose: the per-address
    // allowance is tested on its own below.
    h = await startHarness({ INSTALL_CONFIRMATIONS_PER_ADDRESS_PER_MINUTE: '1000' });
    trap = await startTrap();
  });

  afterAll(async () => {
    await new Promise((resolve) => trap?.server.close(resolve));
    await h?.close();
  });

  async function statusHistory(memberId: string): Promise<string[]> {
    const { rows } = await h.sql.query<{ from_status: string | null; to_status: string }>(
      'SELECT from_status, to_status FROM portal_status_changes WHERE member_id = $1 ORDER BY id',
      [memberId],
    );
    return rows.map((row) => `${row.from_status ?? '-'}>${row.to_status}`);
  }

  it('installs an app with a UI: the page finishes the install, the portal is active with exactly the configured bindings', async () => {
    const portal = await h.emulator.control.createPortal({ appStatus: 'T' });
    const { form, query } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });

    const response = await postForm(
      `${h.app.url}/bitrix24/install?${new URLSearchParams(query).toString()}`,
      formBody(form),
    );

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await response.text();
    expect(html).toContain('<script src="//api.bitrix24.com/api/v1/"></script>');
    expect(html).toContain('BX24.installFinish()');
    for (const secret of [form.AUTH_ID, form.REFRESH_ID, form.APPLICATION_TOKEN]) {
      expect(html).not.toContain(secret);
    }

    const row = await portalRow(h, portal.memberId);
    expect(row).toMatchObject({
      status: 'active',
      client_endpoint: portal.clientEndpoint,
      domain: new URL(portal.clientEndpoint).host,
      plan_status: 'T',
      delivery_mode: 'exactly-once',
    });
    expect(row?.application_token_hash).toEqual(sha256(form.APPLICATION_TOKEN));
    expect(row?.bound_events).toHaveLength(16);
    expect(row?.bound_at).toBeInstanceOf(Date);
    expect(await statusHistory(portal.memberId)).toEqual(['->new', 'new>active']);

    // The chain stored is the one the exchange returned, encrypted: the presented REFRESH_ID is spent.
    const tokens = await tokenRow(h, portal.memberId);
    expect(tokens?.refresh_token).toEqual(expect.any(String));
    expect(tokens?.refresh_token).not.toContain(form.REFRESH_ID);
    expect(tokens?.access_token).not.toContain(form.AUTH_ID);
    const issued = await h.emulator.control.tokens(portal.memberId);
    for (const token of [...issued.accessTokens, ...issued.refreshTokens]) {
      expect(tokens?.access_token).not.toContain(token);
      expect(tokens?.refresh_token).not.toContain(token);
    }

    expect(await emulatorBindings(h, portal.memberId)).toEqual(expectedBindings(h));
    // The installer's rights were asked of the portal the OAuth server named, once.
    expect((await h.emulator.control.stats(portal.memberId)).restCalls['user.admin']).toBe(1);
  });

  it('installs an app without a UI from ONAPPINSTALL, with the same bindings', async () => {
    const portal = await installViaEvent(h);

    const row = await portalRow(h, portal.memberId);
    expect(row).toMatchObject({ status: 'active', plan_status: 'F' });
    expect(row?.application_token_hash).toEqual(sha256(portal.applicationToken));
    const installHandler = {
      event: 'ONAPPINSTALL',
      offline: false,
      handler: h.app.config.eventHandlerUrl,
      connectorId: '',
    };
    expect(await emulatorBindings(h, portal.memberId)).toEqual(
      [...expectedBindings(h), installHandler].sort((a, b) => a.event.localeCompare(b.event)),
    );
  });

  it('binds nothing new on a second install, and a second binding run finds everything in place', async () => {
    const { portal } = await installViaUi(h);
    const before = await h.emulator.control.stats(portal.memberId);

    // The install page opened again (a new chain from the OAuth server, same portal and token).
    const response = await postForm(
      `${h.app.url}/bitrix24/install`,
      formBody({
        REFRESH_ID: await freshRefreshToken(h, portal.memberId),
        APPLICATION_TOKEN: portal.applicationToken,
        member_id: portal.memberId,
      }),
    );
    expect(response.status).toBe(200);
    const report = await h.app.app.get(EventBindingService).bind(portal.memberId);

    expect(report.bound).toEqual([]);
    expect(report.alreadyBound).toHaveLength(16);
    expect(report.deliveryMode).toBe('exactly-once');
    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.restCalls['event.bind']).toBe(before.restCalls['event.bind']);
    expect(await emulatorBindings(h, portal.memberId)).toEqual(expectedBindings(h));
    expect((await portalRow(h, portal.memberId))?.status).toBe('active');
  });

  it('treats a repeated ONAPPINSTALL as a duplicate: its spent refresh token changes nothing, logged once', async () => {
    const portal = await installViaEvent(h);
    const [install] = (await h.emulator.control.sent(portal.memberId)).filter(
      (sent) => sent.event === 'ONAPPINSTALL',
    );
    const before = await h.emulator.control.stats(portal.memberId);
    const tokensBefore = await tokenRow(h, portal.memberId);

    const response = await postEvent(h, install.body);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: 'duplicate_install' });
    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.invalidGrants).toBe(before.invalidGrants + 1);
    expect(after.restCalls).toEqual(before.restCalls);
    expect(await tokenRow(h, portal.memberId)).toEqual(tokensBefore);
    const duplicates = h.app.logs.filter(
      (line) => line.includes('duplicate ONAPPINSTALL') && line.includes(portal.memberId),
    );
    expect(duplicates).toHaveLength(1);
  });

  it('takes the fresh chain of a re-install that kept the application token (its uninstall was missed)', async () => {
    const portal = await installViaEvent(h);
    const tokensBefore = await tokenRow(h, portal.memberId);

    const response = await postEvent(
      h,
      genuineEventBody(portal, 'ONAPPINSTALL', {
        data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
        auth: { refresh_token: await freshRefreshToken(h, portal.memberId) },
      }),
    );

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: 'installed' });
    const tokensAfter = await tokenRow(h, portal.memberId);
    expect(tokensAfter?.generation).toBe((tokensBefore?.generation ?? 0) + 1);
    expect((await portalRow(h, portal.memberId))?.status).toBe('active');
  });

  it('re-installs with a new application token once the OAuth server confirms it; the old token stops working', async () => {
    const portal = await installViaEvent(h);
    const newToken = 'reinstalled0application0token000';

    const response = await postEvent(
      h,
      genuineEventBody(portal, 'ONAPPINSTALL', {
        data: { VERSION: '2', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
        auth: {
          application_token: newToken,
          refresh_token: await freshRefreshToken(h, portal.memberId),
        },
      }),
    );

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: 'installed' });
    expect((await portalRow(h, portal.memberId))?.application_token_hash).toEqual(sha256(newToken));
    const withOldToken = await postEvent(h, genuineEventBody(portal, 'ONOFFLINEEVENT'));
    expect(withOldToken.status).toBe(401);
    const withNewToken = await postEvent(
      h,
      genuineEventBody(portal, 'ONOFFLINEEVENT', { auth: { application_token: newToken } }),
    );
    expect(withNewToken.status).toBe(200);
  });

  it('installs again after an uninstall, through new, back to active', async () => {
    const portal = await installViaEvent(h);
    await h.emulator.control.uninstall(portal.memberId);
    expect((await portalRow(h, portal.memberId))?.status).toBe('uninstalled');

    const { delivered } = await h.emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: h.app.config.eventHandlerUrl,
    });

    expect(delivered.status).toBe(200);
    expect((await portalRow(h, portal.memberId))?.status).toBe('active');
    expect((await tokenRow(h, portal.memberId))?.refresh_token).toEqual(expect.any(String));
    expect(await statusHistory(portal.memberId)).toEqual([
      '->new',
      'new>active',
      'active>uninstalled',
      'uninstalled>new',
      'new>active',
    ]);
  });

  describe('a forged installation', () => {
    it('from the install page creates nothing and calls no address it names', async () => {
      const victim = await h.emulator.control.createPortal();
      const counts = await tableCounts(h);

      const response = await postForm(
        `${h.app.url}/bitrix24/install?DOMAIN=${encodeURIComponent(new URL(trap.url).host)}&PROTOCOL=0`,
        formBody({
          AUTH_ID: 'forgedaccesstoken',
          REFRESH_ID: 'forgedrefreshtoken0000000000',
          SERVER_ENDPOINT: `${trap.url}/rest/`,
          APPLICATION_TOKEN: 'forgedapplicationtoken',
          member_id: victim.memberId,
          status: 'P',
        }),
      );

      expect(response.status).toBe(403);
      const html = await response.text();
      expect(html).toContain('did not confirm this installation');
      expect(html).not.toContain('forgedrefreshtoken');
      expect(await tableCounts(h)).toEqual(counts);
      expect(await portalRow(h, victim.memberId)).toBeUndefined();
      expect(trap.hits).toHaveLength(0);
      expect((await h.emulator.control.stats(victim.memberId)).httpRequests).toBe(0);
    });

    it('with a genuine refresh token of another portal is refused and stores neither portal', async () => {
      const attacker = await h.emulator.control.createPortal();
      const victim = await h.emulator.control.createPortal();
      const { form } = await h.emulator.control.install(attacker.memberId, { mode: 'ui' });
      const counts = await tableCounts(h);

      const response = await postForm(
        `${h.app.url}/bitrix24/install`,
        formBody({ ...form, member_id: victim.memberId }),
      );

      expect(response.status).toBe(403);
      expect(await response.text()).toContain('different portal');
      expect(await tableCounts(h)).toEqual(counts);
      expect((await h.emulator.control.stats(victim.memberId)).httpRequests).toBe(0);
      expect((await h.emulator.control.stats(attacker.memberId)).restCalls).toEqual({});
    });

    it('through ONAPPINSTALL gets 403 in the error format, creates nothing and calls nothing it names', async () => {
      const counts = await tableCounts(h);

      const response = await postEvent(
        h,
        formBody({
          event: 'ONAPPINSTALL',
          data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
          auth: {
            access_token: 'forgedaccess',
            refresh_token: 'forgedrefresh',
            client_endpoint: `${trap.url}/rest/`,
            server_endpoint: `${trap.url}/rest/`,
            domain: new URL(trap.url).host,
            member_id: 'f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0',
            application_token: 'forgedapplicationtoken',
          },
        }),
      );

      expect(response.status).toBe(403);
      expect((await errorBody(response)).error.code).toBe('installation_not_confirmed');
      expect(await tableCounts(h)).toEqual(counts);
      expect(trap.hits).toHaveLength(0);
    });

    it('through ONAPPINSTALL without a refresh token is not verified (401)', async () => {
      const portal = await h.emulator.control.createPortal();
      const counts = await tableCounts(h);

      const response = await postEvent(h, genuineEventBody(portal, 'ONAPPINSTALL'));

      expect(response.status).toBe(401);
      expect((await errorBody(response)).error.code).toBe('event_not_verified');
      expect(await tableCounts(h)).toEqual(counts);
    });
  });

  describe('a portal user who is not an administrator', () => {
    const PLAIN_USER = { userId: 5, admin: false };

    /** Everything an installation could overwrite, read straight from the tables. */
    async function storedState(memberId: string) {
      return {
        portal: await portalRow(h, memberId),
        tokens: await tokenRow(h, memberId),
        history: await statusHistory(memberId),
      };
    }

    async function storedOfflineEvents(memberId: string): Promise<number> {
      const { rows } = await h.sql.query<{ count: string }>(
        `SELECT count(*) FROM stored_events WHERE member_id = $1 AND source = 'offline'`,
        [memberId],
      );
      return Number(rows[0].count);
    }

    /** Real CRM activity: the emulator notifies the app, which must still drain with its own chain. */
    async function expectPortalStillDrains(memberId: string, count: number): Promise<void> {
      const before = await storedOfflineEvents(memberId);
      await h.emulator.control.enqueueOfflineEvents(memberId, { count });
      await eventually(async () =>
        (await storedOfflineEvents(memberId)) === before + count ? true : undefined,
      );
      // The rows are committed before the batch that clears them is sent: wait for that too.
      const stats = await eventually(async () => {
        const seen = await h.emulator.control.stats(memberId);
        return seen.queue.unreserved === 0 && seen.queue.reserved === 0 ? seen : undefined;
      });
      expect(stats.queue).toMatchObject({ unreserved: 0, reserved: 0 });
      const notifications = stats.notificationsSent;
      expect(notifications).toBeGreaterThan(0);
      const answered = (await h.emulator.control.sent(memberId)).filter(
        (sent) => sent.event === 'ONOFFLINEEVENT' && sent.status !== null,
      );
      expect(answered.map((sent) => sent.status)).not.toContain(401);
    }

    it('cannot take over an active portal from the install page: 403, nothing stored, the portal keeps working', async () => {
      const { portal } = await installViaUi(h);
      const before = await storedState(portal.memberId);
      // What the plain user's iframe POST shows them, with a token of their choosing.
      const stolen = {
        REFRESH_ID: await freshRefreshToken(h, portal.memberId, PLAIN_USER),
        APPLICATION_TOKEN: 'chosenbytheplainuser0000000000',
        member_id: portal.memberId,
      };

      const response = await postForm(`${h.app.url}/bitrix24/install`, formBody(stolen));

      expect(response.status).toBe(403);
      const html = await response.text();
      expect(html).toContain('Only an administrator of your Bitrix24 portal can install');
      expect(html).not.toContain(stolen.REFRESH_ID);
      expect(await storedState(portal.memberId)).toEqual(before);
      expect(before.portal?.application_token_hash).toEqual(sha256(portal.applicationToken));
      const refusals = h.app.logs.filter(
        (line) => line.includes('not a portal administrator') && line.includes(portal.memberId),
      );
      expect(refusals).toHaveLength(1);
      await expectPortalStillDrains(portal.memberId, 3);
    });

    it('cannot take over an active portal with a forged ONAPPINSTALL: 403, nothing stored, real events still accepted', async () => {
      const portal = await installViaEvent(h);
      const before = await storedState(portal.memberId);

      const response = await postEvent(
        h,
        genuineEventBody(portal, 'ONAPPINSTALL', {
          data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' },
          auth: {
            application_token: 'chosenbytheplainuser0000000000',
            refresh_token: await freshRefreshToken(h, portal.memberId, PLAIN_USER),
          },
        }),
      );

      expect(response.status).toBe(403);
      const { error } = await errorBody(response);
      expect(error.code).toBe('installation_not_confirmed');
      expect(error.message).toContain('Only an administrator');
      expect(await storedState(portal.memberId)).toEqual(before);
      const genuine = await postEvent(
        h,
        genuineEventBody(portal, 'ONCRMDEALUPDATE', { data: { FIELDS: { ID: '9' } } }),
      );
      expect(await genuine.json()).toEqual({ outcome: 'stored' });
      await expectPortalStillDrains(portal.memberId, 2);
    });

    it('cannot install a portal for the first time either', async () => {
      const portal = await h.emulator.control.createPortal();
      const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
      const counts = await tableCounts(h);

      const response = await postForm(
        `${h.app.url}/bitrix24/install`,
        formBody({
          ...form,
          REFRESH_ID: await freshRefreshToken(h, portal.memberId, PLAIN_USER),
        }),
      );

      expect(response.status).toBe(403);
      expect(await tableCounts(h)).toEqual(counts);
      expect(await portalRow(h, portal.memberId)).toBeUndefined();
      // The admin who opens the app afterwards installs it.
      expect((await postForm(`${h.app.url}/bitrix24/install`, formBody(form))).status).toBe(200);
      expect((await portalRow(h, portal.memberId))?.installer_user_id).toBe(1);
    });

    it('is answered 503 when the portal cannot say who is installing, and nothing is stored', async () => {
      const portal = await h.emulator.control.createPortal();
      await h.emulator.control.setFaults(portal.memberId, {
        overload: true,
        methods: ['user.admin'],
      });
      const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
      const counts = await tableCounts(h);

      const response = await postForm(`${h.app.url}/bitrix24/install`, formBody(form));

      expect(response.status).toBe(503);
      expect(await response.text()).toContain('could not be reached to check who is installing');
      expect(await tableCounts(h)).toEqual(counts);
      await h.emulator.control.clearFaults(portal.memberId);
      const retried = await postForm(
        `${h.app.url}/bitrix24/install`,
        formBody({ ...form, REFRESH_ID: await freshRefreshToken(h, portal.memberId) }),
      );
      expect(retried.status).toBe(200);
    });
  });

  it('answers an install page without the installer form with a 400 page', async () => {
    const response = await postForm(
      `${h.app.url}/bitrix24/install`,
      formBody({ PLACEMENT: 'DEFAULT' }),
    );

    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await response.text()).toContain('must be opened by Bitrix24');
  });

  it('leaves an installation whose binding failed in `new`, and the sweep ends it with its tokens wiped', async () => {
    const portal = await h.emulator.control.createPortal();
    await h.emulator.control.setFaults(portal.memberId, {
      wrongLicense: true,
      methods: ['event.bind'],
    });
    const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });

    const failed = await postForm(`${h.app.url}/bitrix24/install`, formBody(form));

    expect(failed.status).toBe(503);
    const html = await failed.text();
    expect(html).toContain('did not accept the application');
    expect(html).not.toContain(form.REFRESH_ID);
    expect((await portalRow(h, portal.memberId))?.status).toBe('new');
    expect((await tokenRow(h, portal.memberId))?.refresh_token).toEqual(expect.any(String));

    // Not yet stalled: the sweep leaves it alone.
    const sweeper = h.app.app.get(PortalInstallSweeper);
    await sweeper.sweep();
    expect((await portalRow(h, portal.memberId))?.status).toBe('new');

    const timeout = h.app.config.portals.installPendingTimeoutSeconds;
    await h.sql.query(
      `UPDATE portals SET installed_at = now() - make_interval(secs => $2) WHERE member_id = $1`,
      [portal.memberId, timeout + 1],
    );
    await sweeper.sweep();

    const row = await portalRow(h, portal.memberId);
    expect(row?.status).toBe('uninstalled');
    expect(row?.status_reason).toContain(`did not complete within ${timeout} s`);
    const tokens = await tokenRow(h, portal.memberId);
    expect(tokens).toMatchObject({ access_token: null, refresh_token: null });
    expect(await statusHistory(portal.memberId)).toEqual(['->new', 'new>uninstalled']);
  });

  it('completes an installation retried after its binding failed', async () => {
    const portal = await h.emulator.control.createPortal();
    await h.emulator.control.setFaults(portal.memberId, {
      wrongLicense: true,
      methods: ['event.bind'],
    });
    const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
    expect((await postForm(`${h.app.url}/bitrix24/install`, formBody(form))).status).toBe(503);
    await h.emulator.control.clearFaults(portal.memberId);

    const retried = await postForm(
      `${h.app.url}/bitrix24/install`,
      formBody({ ...form, REFRESH_ID: await freshRefreshToken(h, portal.memberId) }),
    );

    expect(retried.status).toBe(200);
    expect((await portalRow(h, portal.memberId))?.status).toBe('active');
    expect(await emulatorBindings(h, portal.memberId)).toEqual(expectedBindings(h));
  });
});

describe('event binding with BITRIX24_AUTH_CONNECTOR', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ BITRIX24_AUTH_CONNECTOR: 'vendor.sync' });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('binds the offline events under the connector, and a second run finds them in place', async () => {
    const portal = await h.emulator.control.createPortal({ plan: 'enterprise' });
    const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
    expect((await postForm(`${h.app.url}/bitrix24/install`, formBody(form))).status).toBe(200);

    const bindings = await emulatorBindings(h, portal.memberId);
    expect(bindings).toEqual(
      expectedBindings(h).map((binding) =>
        binding.offline ? { ...binding, connectorId: 'vendor.sync' } : binding,
      ),
    );
    const report = await h.app.app.get(EventBindingService).bind(portal.memberId);
    expect(report.bound).toEqual([]);
    expect(report.alreadyBound).toHaveLength(16);
  });

  it('records at-most-once delivery for a portal without rest_offline_extended', async () => {
    const portal = await h.emulator.control.createPortal({
      plan: 'enterprise',
      features: { rest_offline_extended: false },
    });
    const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
    expect((await postForm(`${h.app.url}/bitrix24/install`, formBody(form))).status).toBe(200);

    expect((await portalRow(h, portal.memberId))?.delivery_mode).toBe('at-most-once');
  });
});

describe('limits on installation confirmations', () => {
  const PLAIN_USER = { userId: 5, admin: false };
  const INSTALL_DATA = { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' };

  describe('per client address', () => {
    let h: Harness;

    beforeAll(async () => {
      h = await startHarness({ INSTALL_CONFIRMATIONS_PER_ADDRESS_PER_MINUTE: '3' });
    });

    afterAll(async () => {
      await h?.close();
    });

    it('gives confirmed installations their attempt back, refuses the fourth unconfirmed one with 429 and sends it nowhere', async () => {
      // More genuine installations than the allowance, from the same address: none is refused.
      const portals = [];
      for (let index = 0; index < 4; index++) portals.push(await installViaEvent(h));
      const [target] = portals;
      const stolen = [];
      for (let index = 0; index < 4; index++) {
        stolen.push(await freshRefreshToken(h, target.memberId, PLAIN_USER));
      }
      const before = await h.emulator.control.stats(target.memberId);
      const forgedInstall = (refreshToken: string): string =>
        genuineEventBody(target, 'ONAPPINSTALL', {
          data: INSTALL_DATA,
          auth: { refresh_token: refreshToken },
        });

      for (const refreshToken of stolen.slice(0, 3)) {
        expect((await postEvent(h, forgedInstall(refreshToken))).status).toBe(403);
      }
      expect((await h.emulator.control.stats(target.memberId)).refreshes).toBe(
        before.refreshes + 3,
      );

      const limited = await postEvent(h, forgedInstall(stolen[3]));
      expect(limited.status).toBe(429);
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      // The allowance is counted in one-minute windows: at most until this one ends.
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect((await errorBody(limited)).error.code).toBe('installation_rate_limited');

      const page = await postForm(
        `${h.app.url}/bitrix24/install`,
        formBody({
          REFRESH_ID: 'madeuprefreshtoken000000000000',
          APPLICATION_TOKEN: 'madeupapplicationtoken',
          member_id: target.memberId,
        }),
      );
      expect(page.status).toBe(429);
      expect(page.headers.get('retry-after')).toEqual(expect.stringMatching(/^\d+$/));
      expect(await page.text()).toContain('Too many installation attempts from your address');

      // Neither refused request reached the OAuth server.
      expect((await h.emulator.control.stats(target.memberId)).refreshes).toBe(
        before.refreshes + 3,
      );
      expect((await portalRow(h, target.memberId))?.status).toBe('active');
    });
  });

  describe('at once', () => {
    let h: Harness;

    beforeAll(async () => {
      h = await startHarness({ INSTALL_CONFIRMATION_CONCURRENCY: '1' });
    });

    afterAll(async () => {
      await h?.close();
    });

    it('lets another confirmation wait briefly, then answers 503 installation_busy with Retry-After, its refresh token unspent', async () => {
      const slow = await h.emulator.control.createPortal();
      await h.emulator.control.setFaults(slow.memberId, {
        latencyMs: 4000,
        methods: ['user.admin'],
      });
      const slowForm = (await h.emulator.control.install(slow.memberId, { mode: 'ui' })).form;
      const slowInstall = postForm(`${h.app.url}/bitrix24/install`, formBody(slowForm));
      // Its exchange is done and its admin check under way: it holds the only slot.
      await eventually(async () =>
        (await h.emulator.control.stats(slow.memberId)).restCalls['user.admin'] === 1
          ? true
          : undefined,
      );

      const waiting = await h.emulator.control.createPortal();
      const { form } = await h.emulator.control.install(waiting.memberId, { mode: 'ui' });
      const eventBody = genuineEventBody(waiting, 'ONAPPINSTALL', {
        data: INSTALL_DATA,
        auth: { refresh_token: await freshRefreshToken(h, waiting.memberId) },
      });
      const startedAt = performance.now();
      const [page, event] = await Promise.all([
        postForm(`${h.app.url}/bitrix24/install`, formBody(form)),
        postEvent(h, eventBody),
      ]);

      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(1900);
      expect(page.status).toBe(503);
      expect(page.headers.get('retry-after')).toBe('5');
      expect(await page.text()).toContain('Too many installations are being confirmed');
      expect(event.status).toBe(503);
      expect(event.headers.get('retry-after')).toBe('5');
      expect((await errorBody(event)).error.code).toBe('installation_busy');
      expect((await h.emulator.control.stats(waiting.memberId)).refreshes).toBe(0);
      expect(await portalRow(h, waiting.memberId)).toBeUndefined();

      expect((await slowInstall).status).toBe(200);
      // Once the slot is free, the very same form installs: it was never spent.
      const retried = await postForm(`${h.app.url}/bitrix24/install`, formBody(form));
      expect(retried.status).toBe(200);
      expect((await portalRow(h, waiting.memberId))?.status).toBe('active');
    });
  });
});
