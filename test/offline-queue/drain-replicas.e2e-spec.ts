import { Client } from 'pg';
import type { RunningEmulator } from '../../src/emulator';
import type { AppProcess } from '../support/app-process';
import { startReplicaSet, type ReplicaSet } from '../support/replica-set';
import { eventually, notifyOfflineEvent, storedCounts } from './drain-harness';

/** Two server processes on one database, as two replicas behind a load balancer. */
describe('two replicas draining one portal', () => {
  let emulator: RunningEmulator;
  let sql: Client;
  let replicas: AppProcess[] = [];
  let set: ReplicaSet | undefined;

  beforeAll(async () => {
    set = await startReplicaSet(2, { env: { DRAIN_PAGE_SIZE: '50' } });
    ({ emulator, sql, replicas } = set);
  });

  afterAll(async () => {
    await set?.close();
  });

  it('stores every event once while notifications are sprayed at both, and Bitrix24 never sees two gets of the portal in flight', async () => {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: `${replicas[0].url}/bitrix24/events`,
    });
    expect(delivered.status).toBe(200);
    // Slow enough that drains overlap with the notifications.
    await emulator.control.setFaults(portal.memberId, { latencyMs: 50 });

    const total = 1000;
    const spray = async (): Promise<void> => {
      for (let round = 0; round < 15; round += 1) {
        const statuses = await Promise.all(
          replicas.flatMap((replica) => [
            notifyOfflineEvent(replica.url, portal),
            notifyOfflineEvent(replica.url, portal),
          ]),
        );
        expect(statuses.every((status) => status === 200)).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const enqueue = async (): Promise<void> => {
      for (let chunk = 0; chunk < 10; chunk += 1) {
        await emulator.control.enqueueOfflineEvents(portal.memberId, {
          count: total / 10,
          event: chunk % 2 ? 'ONCRMDEALUPDATE' : 'ONCRMCONTACTUPDATE',
          notify: false,
        });
        await new Promise((resolve) => setTimeout(resolve, 120));
      }
    };
    await Promise.all([spray(), enqueue()]);
    // A last notification to each replica, as Bitrix24 would send after the last write.
    await Promise.all(replicas.map((replica) => notifyOfflineEvent(replica.url, portal)));

    await eventually(
      async () => ({
        stored: await storedCounts(sql, portal.memberId),
        queue: (await emulator.control.stats(portal.memberId)).queue,
      }),
      ({ stored, queue }) => stored.rows >= total && queue.total === 0,
      60_000,
    );
    const stats = await emulator.control.stats(portal.memberId);
    expect(await storedCounts(sql, portal.memberId)).toEqual({
      rows: total,
      distinctQueueIds: total,
    });
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
    expect(stats.maxConcurrentOfflineGet).toBe(1);
    // Both replicas took part: each drained, or left its request with the one holding the lease.
    const finishedOn = (replica: AppProcess): boolean =>
      replica.logs.some(
        (line) =>
          line.includes(`"memberId":"${portal.memberId}"`) &&
          line.includes('"msg":"drain finished"'),
      );
    await eventually(
      async () => replicas.map(finishedOn),
      (finished) => finished.every(Boolean),
    );
  }, 90_000);
});
