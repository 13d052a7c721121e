import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import type { CreatedPortal } from '../../src/emulator';
import { LicenseService } from '../../src/portals/license.service';
import {
  LICENSE_STATES,
  licenseStateCondition,
  licenseStateOf,
} from '../../src/portals/portal-license';
import { TEST_ADMIN_TOKEN } from '../support/test-app';
import { eventually } from '../offline-queue/drain-harness';
import {
  genuineEventBody,
  Harness,
  installViaEvent,
  portalRow,
  postEvent,
  sha256,
  startHarness,
  tokenRow,
} from '../webhooks/webhook-harness';

/** A listener of the test's own: a forged event naming it must never make the app connect to it. */
async function startListener(): Promise<{
  url: string;
  connections: () => number;
  close(): Promise<void>;
}> {
  let connections = 0;
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({ result: { CODE: 'test.app.local', VERSION: 99, INSTALLED: true } }),
    );
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface AdminPortal {
  status: string;
  domain: string;
  appVersion: string | null;
  license: {
    state: string;
    status: string | null;
    paymentExpired: boolean | null;
    daysLeft: number | null;
    family: string | null;
    checkedAt: string | null;
  };
}

describe('the app after install: updates, uninstalls and payments', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  async function adminPortal(memberId: string): Promise<AdminPortal> {
    const response = await fetch(`${h.app.url}/admin/portals/${memberId}`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as AdminPortal;
  }

  async function metric(name: string, labels: string): Promise<number> {
    const text = await (await fetch(`${h.app.url}/metrics`)).text();
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{${labels}}`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  }

  async function storedCount(memberId: string): Promise<number> {
    const { rows } = await h.sql.query<{ count: string }>(
      'SELECT count(*) FROM stored_events WHERE member_id = $1',
      [memberId],
    );
    return Number(rows[0].count);
  }

  async function appInfoCalls(memberId: string): Promise<number> {
    return (await h.emulator.control.stats(memberId)).restCalls['app.info'] ?? 0;
  }

  function withToken(portal: CreatedPortal, applicationToken: string): CreatedPortal {
    return { ...portal, applicationToken };
  }

  describe('ONAPPUPDATE', () => {
    it('rotates the application token: new-token events drain, the old token gets 401, the version shows', async () => {
      const portal = await installViaEvent(h);
      expect((await adminPortal(portal.memberId)).appVersion).toBe('1');
      await h.sql.query('UPDATE portals SET server_endpoint = NULL WHERE member_id = $1', [
        portal.memberId,
      ]);

      const update = await h.emulator.control.publishVersion(portal.memberId);

      expect(update.delivered.map(({ status, body }) => ({ status, body }))).toEqual([
        { status: 200, body: JSON.stringify({ outcome: 'updated' }) },
      ]);
      expect((await portalRow(h, portal.memberId))?.application_token_hash).toEqual(
        sha256(update.applicationToken),
      );
      expect((await adminPortal(portal.memberId)).appVersion).toBe('2');
      // The confirmed update's server_endpoint (a known OAuth server: the configured one) is kept.
      expect(
        (
          await h.sql.query<{ server_endpoint: string | null }>(
            'SELECT server_endpoint FROM portals WHERE member_id = $1',
            [portal.memberId],
          )
        ).rows[0].server_endpoint,
      ).toBe(`${h.emulator.url}/rest/`);

      const oldToken = await postEvent(
        h,
        genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '1' } } }),
      );
      expect(oldToken.status).toBe(401);

      const updated = withToken(portal, update.applicationToken);
      const newToken = await postEvent(
        h,
        genuineEventBody(updated, 'ONCRMDEALADD', { data: { FIELDS: { ID: '2' } } }),
      );
      expect(newToken.status).toBe(200);

      // Offline events: the emulator's ONOFFLINEEVENT carries the new token and the drain runs.
      const before = await storedCount(portal.memberId);
      await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 25 });
      await eventually(
        () => storedCount(portal.memberId),
        (count) => count === before + 25,
        20_000,
      );

      // A repeat of the same update changes nothing.
      const repeat = await postEvent(
        h,
        genuineEventBody(updated, 'ONAPPUPDATE', {
          data: { VERSION: '2', PREVIOUS_VERSION: '1', LANGUAGE_ID: 'en' },
          auth: { access_token: update.auth.accessToken, refresh_token: update.auth.refreshToken },
        }),
      );
      expect(await repeat.json()).toEqual({ outcome: 'duplicate_update' });
    });

    it('refuses a forged update (made-up tokens, endpoints of the sender) without calling anything it names', async () => {
      const portal = await installViaEvent(h);
      const listener = await startListener();
      try {
        const before = await portalRow(h, portal.memberId);
        const refusedBefore = await metric(
          'bitrix24_lifecycle_events_refused_total',
          'event="ONAPPUPDATE",reason="token_refused"',
        );

        const forged = await postEvent(
          h,
          genuineEventBody(withToken(portal, 'forgednewapplicationtoken'), 'ONAPPUPDATE', {
            data: { VERSION: '99', PREVIOUS_VERSION: '1', LANGUAGE_ID: 'en' },
            auth: {
              access_token: 'madeupaccesstoken',
              refresh_token: 'neverissuedrefreshtoken',
              client_endpoint: `${listener.url}/rest/`,
              server_endpoint: `${listener.url}/oauth/`,
              domain: new URL(listener.url).host,
            },
          }),
        );

        expect(forged.status).toBe(401);
        const after = await portalRow(h, portal.memberId);
        expect(after?.application_token_hash).toEqual(before?.application_token_hash);
        expect(after?.client_endpoint).toBe(before?.client_endpoint);
        expect(
          (
            await h.sql.query<{ server_endpoint: string | null }>(
              'SELECT server_endpoint FROM portals WHERE member_id = $1',
              [portal.memberId],
            )
          ).rows[0].server_endpoint,
        ).not.toContain(listener.url);
        expect((await adminPortal(portal.memberId)).appVersion).toBe('1');
        expect(listener.connections()).toBe(0);
        expect(
          await metric(
            'bitrix24_lifecycle_events_refused_total',
            'event="ONAPPUPDATE",reason="token_refused"',
          ),
        ).toBe(refusedBefore + 1);
        // The genuine token still works.
        const genuine = await postEvent(
          h,
          genuineEventBody(portal, 'ONCRMDEALADD', { data: { FIELDS: { ID: '3' } } }),
        );
        expect(genuine.status).toBe(200);
      } finally {
        await listener.close();
      }
    });

    it('refuses a replay of an older update once a newer version is installed', async () => {
      const portal = await installViaEvent(h);
      const first = await h.emulator.control.publishVersion(portal.memberId);
      const second = await h.emulator.control.publishVersion(portal.memberId);
      expect(second.delivered[0].body).toBe(JSON.stringify({ outcome: 'updated' }));

      // The first update's access token is still valid, but the portal is at version 3 now.
      const replay = await postEvent(
        h,
        genuineEventBody(withToken(portal, first.applicationToken), 'ONAPPUPDATE', {
          data: { VERSION: '2', PREVIOUS_VERSION: '1', LANGUAGE_ID: 'en' },
          auth: { access_token: first.auth.accessToken, refresh_token: first.auth.refreshToken },
        }),
      );

      expect(replay.status).toBe(401);
      expect((await portalRow(h, portal.memberId))?.application_token_hash).toEqual(
        sha256(second.applicationToken),
      );
      expect((await adminPortal(portal.memberId)).appVersion).toBe('3');
    });
  });

  describe('ONAPPUNINSTALL', () => {
    it('a forged one (genuine application token, app still installed) is answered 200 and changes nothing', async () => {
      const portal = await installViaEvent(h);
      const tokensBefore = await tokenRow(h, portal.memberId);
      const refusedBefore = await metric(
        'bitrix24_lifecycle_events_refused_total',
        'event="ONAPPUNINSTALL",reason="app_still_installed"',
      );

      const forged = await postEvent(
        h,
        genuineEventBody(portal, 'ONAPPUNINSTALL', { data: { LANGUAGE_ID: 'en', CLEAN: '1' } }),
      );

      expect(forged.status).toBe(200);
      expect(await forged.json()).toEqual({ outcome: 'uninstall_not_confirmed' });
      const row = await portalRow(h, portal.memberId);
      expect(row?.status).toBe('active');
      expect(row?.bound_events.length).toBeGreaterThan(0);
      const tokensAfter = await tokenRow(h, portal.memberId);
      expect(tokensAfter?.refresh_token).not.toBeNull();
      expect(tokensAfter?.generation).toBeGreaterThanOrEqual(tokensBefore!.generation);
      expect(
        await metric(
          'bitrix24_lifecycle_events_refused_total',
          'event="ONAPPUNINSTALL",reason="app_still_installed"',
        ),
      ).toBe(refusedBefore + 1);

      // Still draining.
      const before = await storedCount(portal.memberId);
      await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5 });
      await eventually(
        () => storedCount(portal.memberId),
        (count) => count === before + 5,
        20_000,
      );
    });

    it('a genuine one still stops everything', async () => {
      const portal = await installViaEvent(h);

      const { delivered } = await h.emulator.control.uninstall(portal.memberId, { clean: true });

      expect(delivered.map(({ status, body }) => ({ status, body }))).toEqual([
        { status: 200, body: JSON.stringify({ outcome: 'uninstalled' }) },
      ]);
      const row = await portalRow(h, portal.memberId);
      expect(row).toMatchObject({ status: 'uninstalled', bound_events: [], bound_at: null });
      expect((await tokenRow(h, portal.memberId))?.refresh_token).toBeNull();
    });
  });

  describe('ONAPPPAYMENT and the license', () => {
    it('a license change plus ONAPPPAYMENT shows in the admin API and to vendor code', async () => {
      const portal = await installViaEvent(h);
      const installed = await adminPortal(portal.memberId);
      expect(installed.license).toMatchObject({
        state: 'free',
        status: 'F',
        paymentExpired: false,
      });
      expect(installed.license.checkedAt).not.toBeNull();

      const { delivered } = await h.emulator.control.changeLicense(portal.memberId, {
        appStatus: 'P',
        days: 30,
      });
      expect(delivered.map(({ status }) => status)).toEqual([200]);

      const license = await eventually(
        async () => (await adminPortal(portal.memberId)).license,
        (seen) => seen.status === 'P',
        10_000,
      );
      expect(license).toMatchObject({
        state: 'paid',
        status: 'P',
        paymentExpired: false,
        daysLeft: 30,
        family: 'std',
      });
      const vendorView = await h.app.app.get(Bitrix24Client).forPortal(portal.memberId).license();
      expect(vendorView).toMatchObject({ paid: true, state: 'paid', daysLeft: 30 });
    });

    it('lists expired portals to chase and counts portals by license state', async () => {
      const portal = await installViaEvent(h);
      await h.emulator.control.changeLicense(portal.memberId, {
        appStatus: 'P',
        paymentExpired: true,
        days: -3,
      });
      await eventually(
        async () => (await adminPortal(portal.memberId)).license.state,
        (state) => state === 'expired',
        10_000,
      );

      const response = await fetch(`${h.app.url}/admin/portals?license=expired&limit=100`, {
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      });
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: { memberId: string }[] };
      expect(page.items.map(({ memberId }) => memberId)).toContain(portal.memberId);
      const paid = await fetch(`${h.app.url}/admin/portals?license=paid&limit=100`, {
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      });
      const paidPage = (await paid.json()) as { items: { memberId: string }[] };
      expect(paidPage.items.map(({ memberId }) => memberId)).not.toContain(portal.memberId);

      expect(await metric('portals_by_license_state', 'state="expired"')).toBeGreaterThanOrEqual(1);

      const bad = await fetch(`${h.app.url}/admin/portals?license=bogus`, {
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      });
      expect(bad.status).toBe(400);
    });

    it('reads app.info of the portals whose daily read is due, each once across concurrent runs, then a day later', async () => {
      const portals = await Promise.all([
        installViaEvent(h),
        installViaEvent(h),
        installViaEvent(h),
      ]);
      const memberIds = portals.map(({ memberId }) => memberId);
      await h.sql.query(
        `UPDATE portals SET license_check_due_at = now() - interval '1 minute'
          WHERE member_id = ANY($1)`,
        [memberIds],
      );
      const before = await Promise.all(memberIds.map(appInfoCalls));
      const license = h.app.app.get(LicenseService);

      const taken = await Promise.all([license.readDue(50), license.readDue(50)]);

      expect(taken[0] + taken[1]).toBe(memberIds.length);
      const after = await Promise.all(memberIds.map(appInfoCalls));
      expect(after.map((count, index) => count - before[index])).toEqual([1, 1, 1]);
      const { rows } = await h.sql.query<{ hours: number }>(
        `SELECT extract(epoch FROM license_check_due_at - now()) / 3600 AS hours
           FROM portals WHERE member_id = ANY($1)`,
        [memberIds],
      );
      for (const { hours } of rows) {
        expect(Number(hours)).toBeGreaterThan(23);
        expect(Number(hours)).toBeLessThanOrEqual(24);
      }
    });

    it('filters by license state exactly as the API names each portal state', async () => {
      const statuses = [null, 'P', 'S', 'T', 'D', 'F', 'L', 'X'];
      const expiries = [null, true, false];
      const combinations = statuses.flatMap((status) =>
        expiries.flatMap((expired) =>
          [false, true].map((checked) => ({ status, expired, checked })),
        ),
      );
      const ids = combinations.map((_, index) => `license-combo-${index}`);
      for (const [index, combo] of combinations.entries()) {
        await h.sql.query(
          `INSERT INTO portals (member_id, domain, client_endpoint, status, license_status,
              license_payment_expired, license_checked_at)
           VALUES ($1, $2, 'https://x.bitrix24.test/rest/', 'active', $3, $4,
                   CASE WHEN $5::boolean THEN now() END)`,
          [ids[index], `combo${index}.bitrix24.test`, combo.status, combo.expired, combo.checked],
        );
      }
      for (const state of LICENSE_STATES) {
        const { rows } = await h.sql.query<{ member_id: string }>(
          `SELECT member_id FROM portals p WHERE member_id = ANY($1) AND ${licenseStateCondition(state)}`,
          [ids],
        );
        const expected = combinations
          .map((combo, index) => ({ combo, id: ids[index] }))
          .filter(
            ({ combo }) =>
              licenseStateOf({
                licenseStatus: combo.status,
                licensePaymentExpired: combo.expired,
                licenseDays: null,
                licenseFamily: null,
                licenseCheckedAt: combo.checked ? new Date() : null,
              }) === state,
          )
          .map(({ id }) => id)
          .sort();
        expect({ state, ids: rows.map((row) => row.member_id).sort() }).toEqual({
          state,
          ids: expected,
        });
      }
    });

    it('a flood of forged payment events costs at most one app.info per portal per minute', async () => {
      const portal = await installViaEvent(h);
      const before = await appInfoCalls(portal.memberId);
      const forged = genuineEventBody(portal, 'ONAPPPAYMENT', {
        data: {
          CODE: 'test.app.local',
          VERSION: '1',
          STATUS: 'P',
          PAYMENT_EXPIRED: 'N',
          DAYS: '999',
        },
        auth: { application_token: '' },
      });

      const answers = await Promise.all(
        Array.from({ length: 60 }, async () => (await postEvent(h, forged)).status),
      );
      await h.app.app.get(LicenseService).settled();

      expect(new Set(answers)).toEqual(new Set([200]));
      // The first one asks for a read; the other 59 cost nothing.
      expect((await appInfoCalls(portal.memberId)) - before).toBe(1);
      // The event's own data is never believed: the portal is still free, as app.info says.
      expect((await adminPortal(portal.memberId)).license).toMatchObject({
        state: 'free',
        daysLeft: null,
      });
      // A payment event for a portal we do not know is answered the same way and calls nothing.
      const unknown = await postEvent(
        h,
        genuineEventBody(
          { ...portal, memberId: 'unknownmember0000000000000000000' },
          'ONAPPPAYMENT',
          {
            auth: { application_token: '' },
          },
        ),
      );
      expect(unknown.status).toBe(200);
    });
  });
});
