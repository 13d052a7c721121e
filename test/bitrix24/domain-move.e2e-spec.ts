import { Bitrix24ApiError, TRANSPORT_ERROR_CODES } from '../../src/bitrix24/bitrix24-api.error';
import type { CreatedPortal } from '../../src/emulator';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  notifyOfflineEvent,
  startDrainHarness,
  storedCounts,
} from '../offline-queue/drain-harness';
import { TEST_ADMIN_TOKEN, TestApp } from '../support/test-app';
import { restClient, vaultOf } from './bitrix24-harness';

interface AdminPortal {
  domain: string;
  clientEndpoint: string;
  statusHistory: { from: string | null; to: string; reason: string }[];
}

describe('a portal that changes its domain', () => {
  let h: DrainHarness;
  let app: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({ DRAIN_PAGE_SIZE: '50' });
  });

  afterAll(async () => {
    await h?.close();
  });

  async function storedAddress(memberId: string): Promise<{ domain: string; endpoint: string }> {
    const { rows } = await h.sql.query<{ domain: string; client_endpoint: string }>(
      'SELECT domain, client_endpoint FROM portals WHERE member_id = $1',
      [memberId],
    );
    return { domain: rows[0].domain, endpoint: rows[0].client_endpoint };
  }

  async function moveReasons(memberId: string): Promise<string[]> {
    const { rows } = await h.sql.query<{ reason: string; from_status: string; to_status: string }>(
      `SELECT reason, from_status, to_status FROM portal_status_changes
       WHERE member_id = $1 AND reason LIKE 'domain moved%' ORDER BY id`,
      [memberId],
    );
    for (const row of rows) expect(row.from_status).toBe(row.to_status);
    return rows.map((row) => row.reason);
  }

  async function redirectsAnswered(memberId: string): Promise<number> {
    const requests = await h.emulator.control.requests(memberId);
    return requests.filter((request) => request.outcome === 'redirect_302').length;
  }

  async function adminPortal(memberId: string): Promise<AdminPortal> {
    const response = await fetch(`${app.url}/admin/portals/${memberId}`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as AdminPortal;
  }

  it('drains events queued before the move at the new address, each once, and records the move', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120, notify: false });
    const before = await storedAddress(portal.memberId);

    const moved = await h.emulator.control.moveDomain(portal.memberId, {
      domain: `moved-${portal.memberId.slice(0, 8)}.bitrix24.test`,
    });
    const newHost = new URL(moved.to.clientEndpoint).host;
    expect(newHost).not.toBe(before.domain);
    // Bitrix24 names the new address in the events it sends after the move.
    const atNewAddress: CreatedPortal = {
      ...portal,
      domain: moved.to.domain,
      clientEndpoint: moved.to.clientEndpoint,
    };
    expect(await notifyOfflineEvent(app.url, atNewAddress)).toBe(200);

    await eventually(
      () => storedCounts(h.sql, portal.memberId),
      (counts) => counts.rows >= 120,
    );
    await eventually(
      async () => (await h.emulator.control.stats(portal.memberId)).queue,
      (queue) => queue.total === 0 && queue.reserved === 0,
    );
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 120,
      distinctQueueIds: 120,
    });
    expect(await storedAddress(portal.memberId)).toEqual({
      domain: newHost,
      endpoint: moved.to.clientEndpoint,
    });
    const reason = `domain moved from ${before.domain} to ${newHost}`;
    expect(await moveReasons(portal.memberId)).toEqual([reason]);
    // Only the first call after the move met the old address: the cached target was forgotten.
    expect(await redirectsAnswered(portal.memberId)).toBe(1);

    const shown = await adminPortal(portal.memberId);
    expect(shown.domain).toBe(newHost);
    expect(shown.clientEndpoint).toBe(moved.to.clientEndpoint);
    expect(shown.statusHistory).toContainEqual(
      expect.objectContaining({ from: 'active', to: 'active', reason }),
    );
  }, 60_000);

  it("moves the portal when a refresh answer's client_endpoint names another host", async () => {
    const portal = await installBoundPortal(h, app);
    const before = await storedAddress(portal.memberId);
    const moved = await h.emulator.control.moveDomain(portal.memberId, {
      domain: `refreshed-${portal.memberId.slice(0, 8)}.bitrix24.test`,
    });
    const newHost = new URL(moved.to.clientEndpoint).host;

    await vaultOf(app).refresh(portal.memberId);

    expect(await storedAddress(portal.memberId)).toEqual({
      domain: newHost,
      endpoint: moved.to.clientEndpoint,
    });
    expect(await moveReasons(portal.memberId)).toEqual([
      `domain moved from ${before.domain} to ${newHost}`,
    ]);
    await expect(restClient(app, portal.memberId).appInfo()).resolves.toMatchObject({
      INSTALLED: true,
    });
    expect(await redirectsAnswered(portal.memberId)).toBe(0);
  });

  it('ends a call caught in a redirect loop at once with REDIRECT_LOOP, the domain unchanged', async () => {
    const portal = await installBoundPortal(h, app);
    const before = await storedAddress(portal.memberId);
    await h.emulator.control.moveDomain(portal.memberId, {
      domain: `looping-${portal.memberId.slice(0, 8)}.bitrix24.test`,
      loop: true,
    });

    const startedAt = Date.now();
    const failure = await restClient(app, portal.memberId)
      .appInfo()
      .catch((error: unknown) => error);

    // No hang and no retry loop: far below the 30 s request timeout a hanging call would wait for.
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(failure).toBeInstanceOf(Bitrix24ApiError);
    expect(failure).toMatchObject({
      bitrixCode: TRANSPORT_ERROR_CODES.redirectLoop,
      category: 'caller',
    });
    // Once at the old address, once at the new one that points back: then it stops.
    expect(await redirectsAnswered(portal.memberId)).toBe(2);
    expect(await storedAddress(portal.memberId)).toEqual(before);
    expect(await moveReasons(portal.memberId)).toEqual([]);
  });
});
