import {
  Bitrix24ApiError,
  Bitrix24UserNotAuthorizedError,
} from '../../src/bitrix24/bitrix24-api.error';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { OAuthClient } from '../../src/bitrix24/oauth.client';
import { TokenVault } from '../../src/portals/token-vault.service';
import { UserTokenVault } from '../../src/portals/user-token-vault.service';
import {
  portalStatus,
  startBitrix24Harness,
  type Bitrix24Harness,
} from '../bitrix24/bitrix24-harness';
import { installPortalDirectly, type DirectlyInstalledPortal } from '../support/portal-fixtures';
import type { TestApp } from '../support/test-app';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';
import { formBody, postForm } from '../webhooks/webhook-harness';
import { postFrame } from './app-frame-harness';

interface CurrentUser {
  ID: string;
}

describe('calls made as a user: forPortal(memberId).asUser(userId)', () => {
  let h: Bitrix24Harness;
  let replica: TestApp;

  beforeAll(async () => {
    h = await startBitrix24Harness();
    replica = await h.startReplica();
  });
  afterAll(() => h.close());

  const clientOf = (app: TestApp, memberId: string) =>
    app.app.get(Bitrix24Client).forPortal(memberId);

  async function portalWithUser(userId: number): Promise<DirectlyInstalledPortal> {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await openApp(portal.memberId, userId);
    return portal;
  }

  async function openApp(memberId: string, userId: number): Promise<void> {
    const frame = await h.emulator.control.openAppFrame(memberId, { userId, admin: false });
    const answer = await postFrame(h, frame);
    expect(answer.status).toBe(200);
  }

  async function portalChain(memberId: string): Promise<unknown> {
    const { rows } = await h.sql.query(
      `SELECT access_token, refresh_token, access_expires_at, generation FROM portal_tokens
       WHERE member_id = $1`,
      [memberId],
    );
    return rows[0];
  }

  async function userChain(memberId: string, userId: number): Promise<Record<string, unknown>> {
    const { rows } = await h.sql.query<Record<string, unknown>>(
      `SELECT access_token, refresh_token FROM portal_user_tokens
       WHERE member_id = $1 AND user_id = $2`,
      [memberId, userId],
    );
    return rows[0];
  }

  it("answers as the user with the user's own chain, while the portal's calls answer as the installer", async () => {
    const portal = await portalWithUser(7);
    const chainBefore = await portalChain(portal.memberId);
    const asUser = clientOf(h.app, portal.memberId).asUser(7);

    const current = await asUser.call<CurrentUser>('user.current');
    expect(current.result.ID).toBe('7');
    const batch = await asUser.batch({ me: { method: 'user.current' } });
    expect((batch.result.me as CurrentUser).ID).toBe('7');
    expect(await portalChain(portal.memberId)).toEqual(chainBefore);
    expect(() => clientOf(h.app, portal.memberId).asUser(0)).toThrow(/Not a Bitrix24 user ID/);

    const asPortal = await clientOf(h.app, portal.memberId).call<CurrentUser>('user.current');
    expect(asPortal.result.ID).toBe('1');
  });

  it("ten concurrent calls on two replicas after the user's token expired refresh the user's chain once", async () => {
    const portal = await portalWithUser(7);
    const userChainBefore = await userChain(portal.memberId, 7);
    const portalChainBefore = await portalChain(portal.memberId);
    await h.emulator.control.expireTokens(portal.memberId);
    const before = await h.emulator.control.stats(portal.memberId);

    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        clientOf(index % 2 === 0 ? h.app : replica, portal.memberId)
          .asUser(7)
          .call<CurrentUser>('user.current'),
      ),
    );

    expect(answers.map((answer) => answer.result.ID)).toEqual(Array(10).fill('7'));
    const after = await h.emulator.control.stats(portal.memberId);
    // Only the user's chain was used, so every refresh the OAuth server made was the user's.
    expect(after.refreshes - before.refreshes).toBe(1);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    const userChainAfter = await userChain(portal.memberId, 7);
    expect(userChainAfter.refresh_token).not.toEqual(userChainBefore.refresh_token);
    expect(await portalChain(portal.memberId)).toEqual(portalChainBefore);
  });

  it('a user who never opened the app gets user_not_authorized, and nothing is sent', async () => {
    const portal = await portalWithUser(7);
    const before = await h.emulator.control.stats(portal.memberId);
    const failure = await clientOf(h.app, portal.memberId)
      .asUser(8)
      .call('user.current')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Bitrix24UserNotAuthorizedError);
    expect(failure).toMatchObject({ code: 'user_not_authorized' });
    expect((failure as Error).message).toMatch(/must open the app again/);
    expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(
      before.httpRequests,
    );
  });

  it('a user whose refresh token is refused gets user_not_authorized; the portal stays active with its chain', async () => {
    const portal = await portalWithUser(9);
    // Someone else spends the user's single-use refresh token first.
    const stored = await h.app.app.get(UserTokenVault).find(portal.memberId, 9);
    const spent = await postForm(
      `${h.emulator.url}/oauth/token/`,
      formBody({
        grant_type: 'refresh_token',
        client_id: TEST_CLIENT_ID,
        client_secret: TEST_CLIENT_SECRET,
        refresh_token: stored?.refreshToken,
      }),
    );
    expect(spent.status).toBe(200);
    await h.emulator.control.expireTokens(portal.memberId);
    const portalChainBefore = await portalChain(portal.memberId);

    for (let attempt = 0; attempt < 2; attempt++) {
      const failure = await clientOf(h.app, portal.memberId)
        .asUser(9)
        .call('user.current')
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(Bitrix24UserNotAuthorizedError);
      expect(failure).toMatchObject({ code: 'user_not_authorized' });
    }
    // The second call was told at once: the refused chain is not offered to the OAuth server again.
    expect((await h.emulator.control.stats(portal.memberId)).invalidGrants).toBe(1);
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    expect(await portalChain(portal.memberId)).toEqual(portalChainBefore);

    const asPortal = await clientOf(h.app, portal.memberId).call<CurrentUser>('user.current');
    expect(asPortal.result.ID).toBe('1');
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');

    // Opening the app again gives the user a chain that works.
    await openApp(portal.memberId, 9);
    const again = await clientOf(h.app, portal.memberId)
      .asUser(9)
      .call<CurrentUser>('user.current');
    expect(again.result.ID).toBe('9');
  });

  it("a portal-gone answer to a user's call acts on the portal, as the portal's own answer confirms", async () => {
    const portal = await portalWithUser(7);
    await h.emulator.control.uninstall(portal.memberId);

    const failure = await clientOf(h.app, portal.memberId)
      .asUser(7)
      .call('user.current')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Bitrix24ApiError);
    expect(failure).toMatchObject({ bitrixCode: 'APPLICATION_NOT_FOUND' });
    expect(await portalStatus(h.sql, portal.memberId)).toBe('uninstalled');
  });

  it("a user's chain from before a re-install is dropped without uninstalling the portal", async () => {
    const portal = await portalWithUser(7);
    await h.emulator.control.uninstall(portal.memberId);
    const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
    await h.emulator.control.finishInstall(portal.memberId);
    await h.app.app
      .get(TokenVault)
      .storeChain(portal.memberId, await h.app.app.get(OAuthClient).refresh(form.REFRESH_ID));

    const failure = await clientOf(h.app, portal.memberId)
      .asUser(7)
      .call('user.current')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Bitrix24UserNotAuthorizedError);
    expect(failure).toMatchObject({ code: 'user_not_authorized', reason: 'installation_replaced' });
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    expect(await userChain(portal.memberId, 7)).toBeUndefined();
    const asPortal = await clientOf(h.app, portal.memberId).call<CurrentUser>('user.current');
    expect(asPortal.result.ID).toBe('1');
  });
});
