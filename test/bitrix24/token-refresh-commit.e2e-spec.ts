import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { PortalNotActiveError } from '../../src/bitrix24/bitrix24-api.error';
import { PortalStatusService } from '../../src/portals/portal-status.service';
import { startAppProcess } from '../support/app-process';
import { installPortalDirectly } from '../support/portal-fixtures';
import { TEST_ADMIN_TOKEN } from '../support/test-app';
import {
  Bitrix24Harness,
  portalStatus,
  restClient,
  startBitrix24Harness,
  tokensInLogs,
  vaultOf,
} from './bitrix24-harness';
import { OAuthProxy, startOAuthProxy } from './oauth-proxy';

interface TokenRow {
  generation: number;
  access_expires_at: Date;
  refresh_token: string | null;
}

describe('token refresh: a chain the OAuth server rotated is never lost to a failed commit', () => {
  let h: Bitrix24Harness;
  const proxies: OAuthProxy[] = [];

  beforeAll(async () => {
    h = await startBitrix24Harness();
  });

  afterAll(async () => {
    for (const proxy of proxies) {
      proxy.release();
      await proxy.close();
    }
    await h?.close();
  });

  async function proxy(options: Parameters<typeof startOAuthProxy>[1]): Promise<OAuthProxy> {
    const started = await startOAuthProxy(h.emulator.url, options);
    proxies.push(started);
    return started;
  }

  async function tokenRow(memberId: string): Promise<TokenRow> {
    const { rows } = await h.sql.query<TokenRow>(
      'SELECT generation, access_expires_at, refresh_token FROM portal_tokens WHERE member_id = $1',
      [memberId],
    );
    return rows[0];
  }

  /**
   * Kills the session of the refresh transaction that holds the portal's token row while its OAuth
   * exchange is under way, as a dropped connection or a database failover would.
   */
  async function terminateRefreshTransaction(): Promise<void> {
    for (let tries = 0; tries < 100; tries++) {
      const { rows } = await h.sql.query<{ terminated: boolean }>(
        `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND state = 'idle in transaction' AND query LIKE '%FOR UPDATE OF t%'`,
      );
      if (rows.some((row) => row.terminated)) return;
      await sleep(50);
    }
    throw new Error('no refresh transaction holds a token row');
  }

  /** Another session takes the portal's token row and keeps it until `release()` commits (once). */
  async function holdTokenRow(memberId: string): Promise<{ release(): Promise<void> }> {
    const blocker = new Client({ connectionString: h.database.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM portal_tokens WHERE member_id = $1 FOR UPDATE', [
        memberId,
      ]);
    } catch (error) {
      await blocker.end();
      throw error;
    }
    let released: Promise<void> | undefined;
    return {
      release: () =>
        (released ??= blocker.query('COMMIT').then(
          () => blocker.end(),
          async (error: unknown) => {
            await blocker.end();
            throw error;
          },
        )),
    };
  }

  it('stores the new chain on a fresh connection when the refresh transaction dies after the exchange', async () => {
    const held = await proxy({ hold: true });
    const replica = await h.startReplica({ BITRIX24_OAUTH_URL: held.url });
    const portal = await installPortalDirectly(h.emulator, h.app);
    const generationBefore = (await tokenRow(portal.memberId)).generation;
    const before = await h.emulator.control.stats(portal.memberId);

    const refreshing = vaultOf(replica).refresh(portal.memberId);
    await held.arrived;
    await terminateRefreshTransaction();
    held.release();
    const refreshed = await refreshing;

    expect(refreshed.generation).toBe(generationBefore + 1);
    expect((await tokenRow(portal.memberId)).generation).toBe(generationBefore + 1);
    expect(replica.logs.join('\n')).toContain('token refresh answered but not committed');
    // The stored chain is the live one: a replica that reads it works, and it refreshes again.
    await expect(restClient(h.app, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    await vaultOf(h.app).refresh(portal.memberId);
    await expect(restClient(replica, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.refreshes - before.refreshes).toBe(2);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    expect(await tokensInLogs(h.emulator, h.apps)).toEqual([]);
  });

  it('serves the new chain from memory while it cannot be stored, and stores it once the row is free', async () => {
    const held = await proxy({ hold: true });
    const replica = await h.startReplica({ BITRIX24_OAUTH_URL: held.url });
    const portal = await installPortalDirectly(h.emulator, h.app);
    const generationBefore = (await tokenRow(portal.memberId)).generation;
    const before = await h.emulator.control.stats(portal.memberId);

    const refreshing = vaultOf(replica).refresh(portal.memberId);
    await held.arrived;
    await terminateRefreshTransaction();
    // Another session takes the row before the refresh can store its chain again.
    const row = await holdTokenRow(portal.memberId);
    try {
      held.release();

      const refreshed = await refreshing;
      expect(refreshed.generation).toBe(generationBefore + 1);
      expect((await tokenRow(portal.memberId)).generation).toBe(generationBefore);
      // Calls go on with the new access token held in memory.
      await expect(restClient(replica, portal.memberId).appInfo()).resolves.toMatchObject({
        INSTALLED: true,
      });
      // A refresh asked for meanwhile waits for the store rather than spend the spent token.
      const forced = vaultOf(replica).refresh(portal.memberId);
      await sleep(300);
      await row.release();
      await expect(forced).resolves.toMatchObject({ generation: generationBefore + 2 });
    } finally {
      await row.release();
    }

    expect((await tokenRow(portal.memberId)).generation).toBe(generationBefore + 2);
    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.refreshes - before.refreshes).toBe(2);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    await expect(restClient(h.app, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    expect(replica.logs.join('\n')).toContain('refreshed token chain not stored yet');
  });

  it('makes active again a portal marked needs_reinstall by a sibling that spent the rotated refresh token', async () => {
    const held = await proxy({ hold: true });
    const replica = await h.startReplica({ BITRIX24_OAUTH_URL: held.url });
    const portal = await installPortalDirectly(h.emulator, h.app);

    const refreshing = vaultOf(replica).refresh(portal.memberId);
    await held.arrived;
    await terminateRefreshTransaction();
    const row = await holdTokenRow(portal.memberId);
    try {
      held.release();
      await refreshing;
      // What a sibling concludes when it sends the stored (already rotated) refresh token before
      // the new chain is stored: invalid_grant on an unchanged chain.
      await h.app.app
        .get(PortalStatusService)
        .transition(
          portal.memberId,
          'needs_reinstall',
          'the OAuth server rejected the stored refresh token (invalid_grant)',
        );
    } finally {
      await row.release();
    }

    for (let tries = 0; tries < 100; tries++) {
      if ((await portalStatus(h.sql, portal.memberId)) === 'active') break;
      await sleep(100);
    }
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
    await expect(restClient(h.app, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
  });

  it('a refresher that freezes while holding the token row loses it to Postgres, and a sibling refreshes', async () => {
    const held = await proxy({ hold: true });
    const frozen = await startAppProcess({
      databaseUrl: h.database.url,
      env: { BITRIX24_OAUTH_URL: held.url, BITRIX24_REQUEST_TIMEOUT_MS: '1000' },
    });
    try {
      const portal = await installPortalDirectly(h.emulator, h.app);
      void fetch(`${frozen.url}/admin/portals/${portal.memberId}/refresh-token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      }).catch(() => undefined);
      await held.arrived;
      // Stopped between its OAuth request and its commit, like a half-open connection: the row
      // stays locked until Postgres ends the idle transaction.
      process.kill(frozen.pid, 'SIGSTOP');
      const startedAt = Date.now();

      const generationBefore = (await tokenRow(portal.memberId)).generation;
      await expect(vaultOf(h.app).refresh(portal.memberId)).resolves.toMatchObject({
        generation: generationBefore + 1,
      });
      expect(Date.now() - startedAt).toBeLessThan(20_000);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
      expect((await h.emulator.control.stats(portal.memberId)).invalidGrants).toBe(0);
    } finally {
      await frozen.kill();
    }
  });

  it('does not bring back a chain that an uninstall wiped while the refresh was failing', async () => {
    const held = await proxy({ hold: true });
    const replica = await h.startReplica({ BITRIX24_OAUTH_URL: held.url });
    const portal = await installPortalDirectly(h.emulator, h.app);

    const refreshing = vaultOf(replica).refresh(portal.memberId);
    await held.arrived;
    await terminateRefreshTransaction();
    await vaultOf(h.app).wipe(portal.memberId);
    held.release();

    await expect(refreshing).rejects.toBeInstanceOf(PortalNotActiveError);
    expect((await tokenRow(portal.memberId)).refresh_token).toBeNull();
    await expect(restClient(replica, portal.memberId).appInfo()).rejects.toBeInstanceOf(
      PortalNotActiveError,
    );
  });

  it('stores an answer without expiry or with a malformed client_endpoint, keeping the stored endpoint', async () => {
    const altered = await proxy({
      rewrite: (answer) => {
        const rest: Record<string, unknown> = { ...answer, client_endpoint: 'not a url' };
        delete rest.expires_in;
        delete rest.expires;
        return rest;
      },
    });
    const replica = await h.startReplica({ BITRIX24_OAUTH_URL: altered.url });
    const portal = await installPortalDirectly(h.emulator, h.app);
    const generationBefore = (await tokenRow(portal.memberId)).generation;
    const before = await h.emulator.control.stats(portal.memberId);

    const refreshedAt = Date.now();
    const refreshed = await vaultOf(replica).refresh(portal.memberId);

    expect(refreshed.generation).toBe(generationBefore + 1);
    const row = await tokenRow(portal.memberId);
    expect(row.generation).toBe(generationBefore + 1);
    // An hour, the lifetime Bitrix24 issues, when the answer does not say.
    expect(row.access_expires_at.getTime() - refreshedAt).toBeGreaterThan(3_590_000);
    expect(row.access_expires_at.getTime() - refreshedAt).toBeLessThan(3_610_000);
    const { rows } = await h.sql.query<{ client_endpoint: string; domain: string }>(
      'SELECT client_endpoint, domain FROM portals WHERE member_id = $1',
      [portal.memberId],
    );
    expect(rows[0]).toEqual({
      client_endpoint: portal.clientEndpoint,
      domain: new URL(portal.clientEndpoint).host,
    });
    expect(replica.logs.join('\n')).toContain('client_endpoint that is not a usable URL');
    await expect(restClient(replica, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
  });
});
