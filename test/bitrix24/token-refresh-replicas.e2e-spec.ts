import { Client } from 'pg';
import { type CreatedPortal, type PortalStats, type RunningEmulator } from '../../src/emulator';
import { eventually, notifyOfflineEvent, storedCounts } from '../offline-queue/drain-harness';
import type { AppProcess } from '../support/app-process';
import { startReplicaSet, type ReplicaSet } from '../support/replica-set';
import { TEST_ADMIN_TOKEN } from '../support/test-app';

const NOTIFICATIONS_PER_PROCESS = 10;
const OFFLINE_EVENTS = 120;

/** Binds the portal's events again through a replica's admin API: event.get and event.bind calls. */
async function rebind(replica: AppProcess, memberId: string): Promise<number> {
  const response = await fetch(`${replica.url}/admin/portals/${memberId}/rebind`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
  });
  await response.arrayBuffer();
  return response.status;
}

/** Three server processes on one database, as three replicas behind a load balancer. */
describe('token refresh across three replicas', () => {
  let emulator: RunningEmulator;
  let sql: Client;
  let replicas: AppProcess[] = [];
  let set: ReplicaSet | undefined;

  beforeAll(async () => {
    set = await startReplicaSet(3);
    ({ emulator, sql, replicas } = set);
  });

  afterAll(async () => {
    await set?.close();
  });

  /** Installed through the first replica, with offline events waiting in its queue. */
  async function portalWithOfflineEvents(): Promise<CreatedPortal> {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: `${replicas[0].url}/bitrix24/events`,
    });
    expect(delivered.status).toBe(200);
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: OFFLINE_EVENTS,
      event: 'ONCRMDEALUPDATE',
      notify: false,
    });
    return portal;
  }

  const notifyEveryReplica = (portal: CreatedPortal): Promise<number>[] =>
    replicas.flatMap((replica) =>
      Array.from({ length: NOTIFICATIONS_PER_PROCESS }, () =>
        notifyOfflineEvent(replica.url, portal),
      ),
    );

  async function expectDrainedAfterOneRefresh(
    portal: CreatedPortal,
    before: PortalStats,
  ): Promise<void> {
    await eventually(
      async () => ({
        stored: await storedCounts(sql, portal.memberId),
        queue: (await emulator.control.stats(portal.memberId)).queue,
      }),
      ({ stored, queue }) => stored.rows >= OFFLINE_EVENTS && queue.total === 0,
      60_000,
    );
    const after = await emulator.control.stats(portal.memberId);
    expect(after.refreshes - before.refreshes).toBe(1);
    expect(after.invalidGrants - before.invalidGrants).toBe(0);
    expect(after.queue).toMatchObject({ total: 0, reserved: 0 });
    expect(await storedCounts(sql, portal.memberId)).toEqual({
      rows: OFFLINE_EVENTS,
      distinctQueueIds: OFFLINE_EVENTS,
    });
    const { rows } = await sql.query<{ status: string }>(
      'SELECT status FROM portals WHERE member_id = $1',
      [portal.memberId],
    );
    expect(rows[0].status).toBe('active');
  }

  it('ten offline notifications to each at once on an expired token refresh once in all, and the queue drains', async () => {
    const portal = await portalWithOfflineEvents();
    await emulator.control.expireTokens(portal.memberId);
    const before = await emulator.control.stats(portal.memberId);

    const statuses = await Promise.all(notifyEveryReplica(portal));

    expect(statuses.every((status) => status === 200)).toBe(true);
    await expectDrainedAfterOneRefresh(portal, before);
  }, 90_000);

  // Drains of one portal take turns under a lease, so the notifications alone have one replica
  // at a time on the token. Rebinds call Bitrix24 from all three at once: the vault's row lock
  // is what keeps them to one refresh.
  it('three replicas that all cached the expired token and call Bitrix24 at once refresh it once', async () => {
    const portal = await portalWithOfflineEvents();
    for (const replica of replicas) expect(await rebind(replica, portal.memberId)).toBe(200);
    await emulator.control.expireTokens(portal.memberId);
    const before = await emulator.control.stats(portal.memberId);

    const [rebinds, notifications] = await Promise.all([
      Promise.all(replicas.map((replica) => rebind(replica, portal.memberId))),
      Promise.all(notifyEveryReplica(portal)),
    ]);

    expect(rebinds).toEqual([200, 200, 200]);
    expect(notifications.every((status) => status === 200)).toBe(true);
    await expectDrainedAfterOneRefresh(portal, before);
  }, 90_000);
});
