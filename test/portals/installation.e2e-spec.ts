import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventBindingService } from '../../src/portals/event-binding.service';
import { PortalInstallSweeper } from '../../src/portals/portal-install-sweeper';
import {
  emulatorBindings,
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
    h = await startHarness();
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
    expect(row?.bound_events).toHaveLength(14);
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
    expect(report.alreadyBound).toHaveLength(14);
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
    expect(report.alreadyBound).toHaveLength(14);
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
