import { installPortalDirectly, type DirectlyInstalledPortal } from '../support/portal-fixtures';
import { installViaEvent, startHarness, type Harness } from '../webhooks/webhook-harness';
import { me, postFrame } from './app-frame-harness';

describe('POST /bitrix24/app and /app-api/me', () => {
  let harness: Harness;
  let portal: DirectlyInstalledPortal;

  beforeAll(async () => {
    harness = await startHarness();
    portal = await installPortalDirectly(harness.emulator, harness.app);
  });
  afterAll(() => harness.close());

  async function userTokenRows(): Promise<number> {
    const { rows } = await harness.sql.query<{ count: string }>(
      `SELECT count(*) FROM portal_user_tokens WHERE member_id = $1`,
      [portal.memberId],
    );
    return Number(rows[0].count);
  }

  async function portalChain(): Promise<unknown> {
    const { rows } = await harness.sql.query(
      `SELECT access_token, refresh_token, generation FROM portal_tokens WHERE member_id = $1`,
      [portal.memberId],
    );
    return rows[0];
  }

  it('a genuine frame gets the vendor page with a session that /app-api/me accepts', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, {
      placement: 'CRM_DEAL_DETAIL_TAB',
      placementOptions: { ID: '42' },
    });
    const answer = await postFrame(harness, frame);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^text\/html/);
    expect(answer.html).toContain('Your application is running');
    expect(answer.session).not.toBeNull();

    const who = await me(harness, answer.session);
    expect(who).toEqual({
      status: 200,
      body: {
        memberId: portal.memberId,
        userId: 1,
        isAdmin: true,
        userName: 'Portal Administrator',
        placement: 'CRM_DEAL_DETAIL_TAB',
        placementOptions: { ID: '42' },
      },
    });
  });

  it('reads PLACEMENT_OPTIONS "undefined" as no options, and a plain user as no admin', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, {
      userId: 7,
      admin: false,
    });
    expect(frame.form.PLACEMENT_OPTIONS).toBe('undefined');
    const answer = await postFrame(harness, frame);
    expect(answer.status).toBe(200);
    const who = await me(harness, answer.session);
    expect(who.body).toMatchObject({
      userId: 7,
      isAdmin: false,
      placement: 'DEFAULT',
      placementOptions: {},
    });
  });

  it('a reload within the cache costs no further call to the portal', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, { userId: 3 });
    await postFrame(harness, frame);
    const before = (await harness.emulator.control.stats(portal.memberId)).httpRequests;
    const again = await postFrame(harness, frame);
    expect(again.status).toBe(200);
    expect((await harness.emulator.control.stats(portal.memberId)).httpRequests).toBe(before);
  });

  it('a wrong APPLICATION_TOKEN gets 401, a plain page, and stores nothing', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, { userId: 11 });
    const rowsBefore = await userTokenRows();
    const chainBefore = await portalChain();
    const answer = await postFrame(harness, frame, { APPLICATION_TOKEN: 'forged-token' });
    expect(answer.status).toBe(401);
    expect(answer.contentType).toMatch(/^text\/html/);
    expect(answer.session).toBeNull();
    expect(await userTokenRows()).toBe(rowsBefore);
    expect(await portalChain()).toEqual(chainBefore);
  });

  it('an AUTH_ID the portal refuses gets 401 and stores nothing', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, { userId: 12 });
    const rowsBefore = await userTokenRows();
    const answer = await postFrame(harness, frame, { AUTH_ID: 'not-a-token-of-this-portal' });
    expect(answer.status).toBe(401);
    expect(answer.session).toBeNull();
    expect(await userTokenRows()).toBe(rowsBefore);
  });

  it('an unknown member_id and a form without fields get 401', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId);
    expect((await postFrame(harness, frame, { member_id: 'unknown-portal' })).status).toBe(401);
    expect((await postFrame(harness, frame, { AUTH_ID: '' })).status).toBe(401);
    expect((await postFrame(harness, frame, { PLACEMENT_OPTIONS: '{not json' })).status).toBe(401);
  });

  it('a frame of a portal that is not active gets 401', async () => {
    const other = await installPortalDirectly(harness.emulator, harness.app, {
      status: 'needs_reinstall',
    });
    const frame = await harness.emulator.control.openAppFrame(other.memberId);
    expect((await postFrame(harness, frame)).status).toBe(401);
  });

  it('/app-api/me refuses a missing, tampered or expired session', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, {
      userId: 5,
      admin: false,
    });
    const { session } = await postFrame(harness, frame);
    expect(session).not.toBeNull();
    const [version, payload, mac] = session!.split('.');

    expect((await me(harness, null)).status).toBe(401);
    expect((await me(harness, 'garbage')).status).toBe(401);
    // Claim admin rights with the old signature.
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const forged = Buffer.from(JSON.stringify({ ...claims, a: true })).toString('base64url');
    expect((await me(harness, `${version}.${forged}.${mac}`)).status).toBe(401);
    // The same claims with a lifetime that already ended, signed by someone without our key.
    const expired = Buffer.from(JSON.stringify({ ...claims, e: 1 })).toString('base64url');
    expect((await me(harness, `${version}.${expired}.${mac}`)).status).toBe(401);
  });

  it('a session lives no longer than AUTH_EXPIRES, and never more than an hour', async () => {
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, { userId: 8 });
    const lifetimes: number[] = [];
    for (const expires of ['120', '86400']) {
      const { session } = await postFrame(harness, frame, { AUTH_EXPIRES: expires });
      const claims = JSON.parse(
        Buffer.from(session!.split('.')[1], 'base64url').toString('utf8'),
      ) as { e: number };
      lifetimes.push(claims.e - Math.floor(Date.now() / 1000));
    }
    expect(lifetimes[0]).toBeLessThanOrEqual(120);
    expect(lifetimes[1]).toBeLessThanOrEqual(3600);
    expect(lifetimes[1]).toBeGreaterThan(120);
  });

  it("a plain user's frame stores the user's own chain, encrypted, and never the portal's", async () => {
    const chainBefore = await portalChain();
    const frame = await harness.emulator.control.openAppFrame(portal.memberId, {
      userId: 21,
      admin: false,
    });
    expect((await postFrame(harness, frame)).status).toBe(200);
    expect(await portalChain()).toEqual(chainBefore);
    const { rows } = await harness.sql.query<{
      access_token: string;
      refresh_token: string;
      is_admin: boolean;
    }>(
      `SELECT access_token, refresh_token, is_admin FROM portal_user_tokens
       WHERE member_id = $1 AND user_id = 21`,
      [portal.memberId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].is_admin).toBe(false);
    expect(rows[0].access_token).not.toContain(frame.form.AUTH_ID);
    expect(rows[0].refresh_token).not.toContain(frame.form.REFRESH_ID);
    expect(rows[0].access_token).toMatch(/^v1:/);
    expect(harness.app.logs.join('\n')).not.toContain(frame.form.AUTH_ID);
  });

  it("wipes the users' chains when the portal is uninstalled", async () => {
    const other = await installViaEvent(harness);
    const frame = await harness.emulator.control.openAppFrame(other.memberId, { userId: 4 });
    expect((await postFrame(harness, frame)).status).toBe(200);
    const count = async (): Promise<number> =>
      Number(
        (
          await harness.sql.query<{ count: string }>(
            `SELECT count(*) FROM portal_user_tokens WHERE member_id = $1`,
            [other.memberId],
          )
        ).rows[0].count,
      );
    expect(await count()).toBe(1);
    const { delivered } = await harness.emulator.control.uninstall(other.memberId);
    expect(delivered.every((event) => event.status === 200)).toBe(true);
    expect(await count()).toBe(0);
  });
});
