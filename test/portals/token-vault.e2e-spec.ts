import { DataSource } from 'typeorm';
import { PortalNotActiveError } from '../../src/bitrix24/bitrix24-api.error';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { createPinoLogger } from '../../src/logging/app-logger';
import { DrainService } from '../../src/offline-queue/drain.service';
import { EventBindingService } from '../../src/portals/event-binding.service';
import { rotateTokenKey } from '../../src/portals/rotate-token-key';
import { keyIdOf, TokenCipher } from '../../src/portals/token-cipher';
import { TokenKeepAlive } from '../../src/portals/token-keep-alive.service';
import { UndecryptableTokenError } from '../../src/portals/token-vault.error';
import {
  Bitrix24Harness,
  portalStatus,
  restClient,
  startBitrix24Harness,
  tokensInLogs,
  vaultOf,
} from '../bitrix24/bitrix24-harness';
import { installPortalDirectly } from '../support/portal-fixtures';
import { TEST_ENCRYPTION_KEY } from '../support/test-app';

const OLD_KEY = Buffer.from(TEST_ENCRYPTION_KEY, 'base64');
const NEW_KEY = Buffer.alloc(32, 9);

interface RawTokenRow {
  access_token: string | null;
  refresh_token: string | null;
  key_id: string | null;
  generation: number;
  refresh_expires_at: Date | null;
}

describe('the token vault', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness();
  });

  afterAll(async () => {
    await h?.close();
  });

  async function rawRow(memberId: string): Promise<RawTokenRow> {
    const { rows } = await h.sql.query<RawTokenRow>(
      `SELECT access_token, refresh_token, key_id, generation, refresh_expires_at
       FROM portal_tokens WHERE member_id = $1`,
      [memberId],
    );
    return rows[0];
  }

  it('keeps no token in plaintext: the raw columns hold tagged AES-GCM ciphertexts only', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await vaultOf(h.app).refresh(portal.memberId);
    const issued = await h.emulator.control.tokens(portal.memberId);
    const { rows } = await h.sql.query<Record<string, unknown>>(
      'SELECT * FROM portal_tokens WHERE member_id = $1',
      [portal.memberId],
    );

    const raw = JSON.stringify(rows);
    for (const token of [...issued.accessTokens, ...issued.refreshTokens]) {
      expect(raw).not.toContain(token);
    }
    const row = await rawRow(portal.memberId);
    expect(row.key_id).toBe(keyIdOf(OLD_KEY));
    expect(row.access_token).toMatch(new RegExp(`^v1:${keyIdOf(OLD_KEY)}:`));
    expect(row.refresh_token).toMatch(new RegExp(`^v1:${keyIdOf(OLD_KEY)}:`));
  });

  it('after a key rotation still reads rows of the old key, and the rotation command re-encrypts them all', async () => {
    const portals = [
      await installPortalDirectly(h.emulator, h.app),
      await installPortalDirectly(h.emulator, h.app),
    ];
    const rotated = await h.startReplica({
      TOKEN_ENCRYPTION_KEY: NEW_KEY.toString('base64'),
      TOKEN_ENCRYPTION_OLD_KEYS: OLD_KEY.toString('base64'),
    });
    // Old rows are readable with the old key listed; a refresh writes under the new key.
    await expect(restClient(rotated, portals[0].memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    await vaultOf(rotated).refresh(portals[0].memberId);
    expect((await rawRow(portals[0].memberId)).key_id).toBe(keyIdOf(NEW_KEY));
    expect((await rawRow(portals[1].memberId)).key_id).toBe(keyIdOf(OLD_KEY));
    const generationBefore = (await rawRow(portals[1].memberId)).generation;

    const dataSource = await new DataSource(
      dataSourceOptions(h.database.url, { poolSize: 2 }),
    ).initialize();
    try {
      const report = await rotateTokenKey(
        dataSource,
        new TokenCipher(NEW_KEY, [OLD_KEY]),
        createPinoLogger('silent'),
      );
      expect(report.reencrypted).toBeGreaterThanOrEqual(1);
      const { rows } = await h.sql.query<{ count: string }>(
        `SELECT count(*) FROM portal_tokens WHERE refresh_token IS NOT NULL AND key_id <> $1`,
        [keyIdOf(NEW_KEY)],
      );
      expect(Number(rows[0].count)).toBe(0);
      const again = await rotateTokenKey(
        dataSource,
        new TokenCipher(NEW_KEY, [OLD_KEY]),
        createPinoLogger('silent'),
      );
      expect(again.reencrypted).toBe(0);
    } finally {
      await dataSource.destroy();
    }
    const rewritten = await rawRow(portals[1].memberId);
    expect(rewritten.access_token).toMatch(new RegExp(`^v1:${keyIdOf(NEW_KEY)}:`));
    expect(rewritten.generation).toBe(generationBefore);

    // Only the new key now: every row still opens.
    const newKeyOnly = await h.startReplica({ TOKEN_ENCRYPTION_KEY: NEW_KEY.toString('base64') });
    for (const portal of portals) {
      await expect(restClient(newKeyOnly, portal.memberId).appInfo()).resolves.toMatchObject({
        INSTALLED: true,
      });
    }
  });

  it('refuses a row whose key is not configured, naming the key and never the token', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const otherKeyOnly = await h.startReplica({
      TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 11).toString('base64'),
    });
    const failure = await vaultOf(otherKeyOnly)
      .accessTokenFor(portal.memberId)
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UndecryptableTokenError);
    expect((failure as Error).message).toContain(keyIdOf(OLD_KEY));
  });

  it('reports token expiry without the tokens, and wipes a chain for good', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const vault = vaultOf(h.app);
    const expiry = await vault.expiry(portal.memberId);
    expect(Object.keys(expiry ?? {}).sort()).toEqual([
      'accessExpiresAt',
      'refreshExpiresAt',
      'refreshedAt',
    ]);
    expect(expiry!.accessExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    const lifetimeDays = h.app.config.bitrix24.refreshTokenLifetimeDays;
    expect(expiry!.refreshExpiresAt!.getTime() - expiry!.refreshedAt!.getTime()).toBe(
      lifetimeDays * 86_400_000,
    );
    await restClient(h.app, portal.memberId).appInfo();
    const generation = (await rawRow(portal.memberId)).generation;

    await vault.wipe(portal.memberId);

    const row = await rawRow(portal.memberId);
    expect(row).toMatchObject({ access_token: null, refresh_token: null, key_id: null });
    expect(row.generation).toBe(generation + 1);
    await expect(vault.expiry(portal.memberId)).resolves.toBeNull();
    await expect(restClient(h.app, portal.memberId).appInfo()).rejects.toBeInstanceOf(
      PortalNotActiveError,
    );
  });

  describe('keep-alive', () => {
    it('refreshes chains near the end of their life, leaves the others, and does not repeat itself', async () => {
      const due = await installPortalDirectly(h.emulator, h.app);
      const fresh = await installPortalDirectly(h.emulator, h.app);
      const inactive = await installPortalDirectly(h.emulator, h.app, { status: 'uninstalled' });
      await h.sql.query(
        `UPDATE portal_tokens SET refresh_expires_at = now() + interval '1 day'
         WHERE member_id = ANY($1)`,
        [[due.memberId, inactive.memberId]],
      );
      const before = await Promise.all(
        [due, fresh].map((portal) => h.emulator.control.stats(portal.memberId)),
      );

      const report = await h.app.app.get(TokenKeepAlive).refreshDueChains();

      expect(report.failed).toBe(0);
      expect(report.refreshed).toBeGreaterThanOrEqual(1);
      const after = await Promise.all(
        [due, fresh].map((portal) => h.emulator.control.stats(portal.memberId)),
      );
      expect(after[0].refreshes - before[0].refreshes).toBe(1);
      expect(after[1].refreshes - before[1].refreshes).toBe(0);
      const renewedUntil = (await rawRow(due.memberId)).refresh_expires_at!.getTime();
      expect(renewedUntil).toBeGreaterThan(Date.now() + 20 * 86_400_000);
      expect((await rawRow(inactive.memberId)).refresh_expires_at!.getTime()).toBeLessThan(
        Date.now() + 2 * 86_400_000,
      );

      const second = await h.app.app.get(TokenKeepAlive).refreshDueChains();
      expect(second.due).toBe(0);
      await expect(restClient(h.app, due.memberId).appInfo()).resolves.toMatchObject({
        INSTALLED: true,
      });
    });
  });

  describe('payment probe', () => {
    async function storedEvents(memberId: string): Promise<number> {
      const { rows } = await h.sql.query<{ count: string }>(
        'SELECT count(*) FROM stored_events WHERE member_id = $1',
        [memberId],
      );
      return Number(rows[0].count);
    }

    it('leaves an unpaid portal payment_required without a warning, and makes it active and drained once paid', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app);
      await h.app.app.get(EventBindingService).bind(portal.memberId);
      await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5, notify: false });
      await h.emulator.control.setFaults(portal.memberId, { paymentAllowed: false });
      await expect(vaultOf(h.app).refresh(portal.memberId)).rejects.toMatchObject({
        bitrixCode: 'PAYMENT_REQUIRED',
      });
      expect(await portalStatus(h.sql, portal.memberId)).toBe('payment_required');
      const drains = h.app.app.get(DrainService);
      expect((await drains.drainPortal(portal.memberId)).outcome).toBe('portal_not_active');
      const keepAlive = h.app.app.get(TokenKeepAlive);

      const logsBefore = h.app.logs.length;
      const unpaid = await keepAlive.probePaymentRequired();
      expect(unpaid).toMatchObject({ recovered: 0, failed: 0 });
      expect(unpaid.unpaid).toBeGreaterThanOrEqual(1);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('payment_required');
      const loud = h.app.logs
        .slice(logsBefore)
        .map((line) => JSON.parse(line) as { level: string; msg: string })
        .filter((line) => line.level !== 'debug' && line.level !== 'trace');
      expect(loud).toEqual([]);

      await h.emulator.control.setFaults(portal.memberId, { paymentAllowed: true });
      const paid = await keepAlive.probePaymentRequired();

      expect(paid.recovered).toBeGreaterThanOrEqual(1);
      expect(await portalStatus(h.sql, portal.memberId)).toBe('active');
      await expect(drains.drainPortal(portal.memberId)).resolves.toMatchObject({
        outcome: 'drained',
        events: 5,
      });
      expect(await storedEvents(portal.memberId)).toBe(5);
      const stats = await h.emulator.control.stats(portal.memberId);
      expect(stats.invalidGrants).toBe(0);
      expect(stats.queue.total).toBe(0);
    });

    it('asks every payment_required portal, and only those', async () => {
      const install = async (
        status: 'payment_required' | 'needs_reinstall',
        paymentAllowed: boolean,
      ) => {
        const portal = await installPortalDirectly(h.emulator, h.app, { status });
        await h.emulator.control.setFaults(portal.memberId, { paymentAllowed });
        return portal;
      };
      const stillUnpaid = [
        await install('payment_required', false),
        await install('payment_required', false),
      ];
      const paidMeanwhile = await install('payment_required', true);
      const otherStatus = await install('needs_reinstall', true);
      const refreshesOf = async (memberId: string) =>
        (await h.emulator.control.stats(memberId)).refreshes;
      const otherBefore = await refreshesOf(otherStatus.memberId);

      const report = await h.app.app.get(TokenKeepAlive).probePaymentRequired();

      expect(report.failed).toBe(0);
      expect(report.recovered).toBeGreaterThanOrEqual(1);
      expect(report.unpaid).toBeGreaterThanOrEqual(2);
      expect(await portalStatus(h.sql, paidMeanwhile.memberId)).toBe('active');
      for (const portal of stillUnpaid) {
        expect(await portalStatus(h.sql, portal.memberId)).toBe('payment_required');
      }
      expect(await refreshesOf(otherStatus.memberId)).toBe(otherBefore);
      expect(await portalStatus(h.sql, otherStatus.memberId)).toBe('needs_reinstall');
    });
  });

  it('none of the tokens the emulator issued appears in any log line of the apps', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await vaultOf(h.app).refresh(portal.memberId);
    expect(await tokensInLogs(h.emulator, h.apps)).toEqual([]);
  });
});
