import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { OAuthError, PortalNotActiveError } from '../../src/bitrix24/bitrix24-api.error';
import type { AppInfo } from '../../src/bitrix24/bitrix24.types';
import { OAuthClient } from '../../src/bitrix24/oauth.client';
import { installPortalDirectly } from '../support/portal-fixtures';
import {
  Bitrix24Harness,
  portalStatus,
  restClient,
  startBitrix24Harness,
  tokensInLogs,
  vaultOf,
} from './bitrix24-harness';
import { startOAuthProxy } from './oauth-proxy';

/** Waits until some session of the test database is blocked on a lock. */
async function someoneWaitsForALock(h: Bitrix24Harness): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    const { rows } = await h.sql.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (rows.length > 0) return;
    await sleep(50);
  }
  throw new Error('nobody queued for the row lock');
}

async function statusChangesTo(h: Bitrix24Harness, memberId: string, to: string): Promise<number> {
  const { rows } = await h.sql.query<{ count: string }>(
    'SELECT count(*) FROM portal_status_changes WHERE member_id = $1 AND to_status = $2',
    [memberId, to],
  );
  return Number(rows[0].count);
}

describe('token refresh: single-use refresh tokens across callers and replicas', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('20 concurrent calls on an expired token cause exactly one refresh, and all succeed', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    await client.appInfo();
    await h.emulator.control.expireTokens(portal.memberId);
    const before = await h.emulator.control.stats(portal.memberId);

    const answers = await Promise.all(
      Array.from({ length: 20 }, () => client.call<AppInfo>('app.info')),
    );

    const after = await h.emulator.control.stats(portal.memberId);
    expect(answers.every((answer) => answer.result.INSTALLED === true)).toBe(true);
    expect(after.refreshes - before.refreshes).toBe(1);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
  });

  it('two replicas racing on an expired token refresh once between them, with no invalid_grant', async () => {
    const replica = await h.startReplica();
    const portal = await installPortalDirectly(h.emulator, h.app);
    const first = restClient(h.app, portal.memberId);
    const second = restClient(replica, portal.memberId);
    // Both replicas hold the same access token in memory when it expires.
    await Promise.all([first.appInfo(), second.appInfo()]);
    await h.emulator.control.expireTokens(portal.memberId);
    const before = await h.emulator.control.stats(portal.memberId);

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) => (index % 2 ? first : second).appInfo()),
    );

    const after = await h.emulator.control.stats(portal.memberId);
    expect(answers.every((info) => info.INSTALLED === true)).toBe(true);
    expect(after.refreshes - before.refreshes).toBe(1);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
  });

  it("a replica whose cached token a sibling's refresh killed picks up the sibling's chain", async () => {
    const replica = await h.startReplica();
    const portal = await installPortalDirectly(h.emulator, h.app);
    await restClient(replica, portal.memberId).appInfo();
    const before = await h.emulator.control.stats(portal.memberId);

    // The first app rotates the chain: the replica's cached access token dies (invalid_token).
    const rotated = await vaultOf(h.app).refresh(portal.memberId);
    const info = await restClient(replica, portal.memberId).appInfo();

    const after = await h.emulator.control.stats(portal.memberId);
    expect(info.INSTALLED).toBe(true);
    expect(after.refreshes - before.refreshes).toBe(1);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    expect((await vaultOf(replica).accessTokenFor(portal.memberId)).generation).toBe(
      rotated.generation,
    );
  });

  it('invalid_grant on the stored chain marks the portal needs_reinstall, and traffic stops', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    await client.appInfo();
    await h.emulator.control.expireTokens(portal.memberId, { refresh: true });

    const failure = await client.appInfo().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OAuthError);
    expect(failure).toMatchObject({ bitrixCode: 'invalid_grant', category: 'auth' });
    expect(await portalStatus(h.sql, portal.memberId)).toBe('needs_reinstall');
    expect(await statusChangesTo(h, portal.memberId, 'needs_reinstall')).toBe(1);

    const before = await h.emulator.control.stats(portal.memberId);
    await expect(client.appInfo()).rejects.toBeInstanceOf(PortalNotActiveError);
    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.httpRequests).toBe(before.httpRequests);
    expect(after.invalidGrants).toBe(before.invalidGrants);
  });

  it('invalid_grant while a re-install stores a new chain re-reads the vault and keeps the portal active', async () => {
    const proxy = await startOAuthProxy(h.emulator.url, { hold: true });
    try {
      const slowReplica = await h.startReplica({ BITRIX24_OAUTH_URL: proxy.url });
      const portal = await installPortalDirectly(h.emulator, h.app);
      // The app is removed and installed again: the stored chain is dead, a new one is issued.
      await h.emulator.control.uninstall(portal.memberId);
      const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
      await h.emulator.control.finishInstall(portal.memberId);
      const freshChain = await h.app.app.get(OAuthClient).refresh(form.REFRESH_ID);
      const generationBefore = (
        await h.sql.query<{ generation: number }>(
          'SELECT generation FROM portal_tokens WHERE member_id = $1',
          [portal.memberId],
        )
      ).rows[0].generation;

      // The replica locks the row and spends the dead refresh token; while its answer is held
      // back, the re-install's write queues for the same row.
      const refreshing = vaultOf(slowReplica).refresh(portal.memberId);
      await proxy.arrived;
      // As a re-install does: the portal row first, then the chain, in one transaction.
      const storing = h.app.app.get(DataSource).transaction(async (manager) => {
        await manager.query('SELECT 1 FROM portals WHERE member_id = $1 FOR UPDATE', [
          portal.memberId,
        ]);
        await vaultOf(h.app).storeChain(portal.memberId, freshChain, manager);
      });
      await someoneWaitsForALock(h);
      proxy.release();

      const refreshed = await refreshing;
      await storing;
      expect(refreshed.generation).toBe(generationBefore + 1);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
      expect(await statusChangesTo(h, portal.memberId, 'needs_reinstall')).toBe(0);
      expect((await restClient(slowReplica, portal.memberId).appInfo()).INSTALLED).toBe(true);
    } finally {
      proxy.release();
      await proxy.close();
    }
  });

  it('a replica still holding a token from before a re-install takes the new chain instead of uninstalling', async () => {
    const replica = await h.startReplica();
    const portal = await installPortalDirectly(h.emulator, h.app);
    await restClient(replica, portal.memberId).appInfo();
    // Re-installed, and the new chain stored by the other replica.
    await h.emulator.control.uninstall(portal.memberId);
    const { form } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
    await h.emulator.control.finishInstall(portal.memberId);
    await vaultOf(h.app).storeChain(
      portal.memberId,
      await h.app.app.get(OAuthClient).refresh(form.REFRESH_ID),
    );

    await expect(restClient(replica, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    expect(await statusChangesTo(h, portal.memberId, 'uninstalled')).toBe(0);
  });

  it('none of the tokens the emulator issued appears in any log line of the apps', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await h.emulator.control.expireTokens(portal.memberId);
    await restClient(h.app, portal.memberId).appInfo();
    await vaultOf(h.app).refresh(portal.memberId);

    expect(h.apps.flatMap((app) => app.logs).join('\n')).toContain('token chain refreshed');
    expect(await tokensInLogs(h.emulator, h.apps)).toEqual([]);
  });
});
