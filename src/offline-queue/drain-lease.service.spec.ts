import { DataSource } from 'typeorm';
import { TestDatabase, createTestDatabase } from '../../test/support/postgres';
import { loadConfig } from '../config/app-config';
import { dataSourceOptions } from '../database/data-source-options';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { DrainLeaseService } from './drain-lease.service';
import { DrainLeaseLostError } from './offline-queue.errors';

describe('DrainLeaseService (real Postgres)', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const config = loadConfig({
    BITRIX24_CLIENT_ID: 'id',
    BITRIX24_CLIENT_SECRET: 'secret',
    DRAIN_LEASE_SECONDS: '5',
  });
  const logger = new AppLogger(createPinoLogger('silent'));
  let replicaA: DrainLeaseService;
  let replicaB: DrainLeaseService;
  let portalNumber = 0;
  const nextPortal = (): string => `lease-portal-${(portalNumber += 1)}`;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = new DataSource(dataSourceOptions(database.url, { poolSize: 6 }));
    await dataSource.initialize();
    replicaA = new DrainLeaseService(dataSource, config, logger);
    replicaB = new DrainLeaseService(dataSource, config, logger);
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  async function expireNow(memberId: string): Promise<void> {
    await dataSource.query(
      `UPDATE offline_queue_states SET lease_expires_at = now() - interval '1 second'
       WHERE member_id = $1`,
      [memberId],
    );
  }

  it('lets exactly one of many concurrent acquirers take a portal', async () => {
    const memberId = nextPortal();
    const attempts = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? replicaA : replicaB).acquire(memberId)),
    );
    const winners = attempts.filter((lease) => lease !== null);
    expect(winners).toHaveLength(1);
    const [winner] = winners;
    await (winner.holder === replicaA.holder ? replicaA : replicaB).release(winner, {
      outcome: 'drained',
      events: 0,
    });
  });

  it('keeps a renewed lease past its duration: another replica stays out', async () => {
    const memberId = nextPortal();
    const lease = await replicaA.acquire(memberId);
    expect(lease).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 6500));
    expect(lease!.held).toBe(true);
    expect(await replicaB.acquire(memberId)).toBeNull();
    await replicaA.release(lease!, { outcome: 'drained', events: 0 });
  }, 15_000);

  it('hands a lease whose holder stopped renewing to another replica with a higher fencing token; the old holder can no longer commit', async () => {
    const memberId = nextPortal();
    const stale = await replicaA.acquire(memberId);
    clearInterval(stale!.renewal); // the holder is paused
    await expireNow(memberId);

    const taker = await replicaB.acquire(memberId);
    expect(taker).not.toBeNull();
    expect(BigInt(taker!.token)).toBe(BigInt(stale!.token) + 1n);
    expect(taker!.previous.cleanlyFinished).toBe(false);

    await expect(
      dataSource.transaction((manager) => replicaA.confirm(manager, stale!)),
    ).rejects.toBeInstanceOf(DrainLeaseLostError);
    expect(() => stale!.ensureHeld()).toThrow(DrainLeaseLostError);
    await expect(
      dataSource.transaction((manager) => replicaB.confirm(manager, taker!)),
    ).resolves.toBeUndefined();

    // The old holder's release touches nothing: the taker's lease stands.
    await replicaA.release(stale!, { outcome: 'failed', events: 0, error: 'paused' });
    expect(await replicaA.acquire(memberId)).toBeNull();
    await replicaB.release(taker!, { outcome: 'drained', events: 3 });
  });

  it('frees the lease at release and records the pass for the next holder', async () => {
    const memberId = nextPortal();
    const first = await replicaA.acquire(memberId);
    expect(first!.previous).toEqual({
      cleanlyFinished: false,
      adoptionCheckedAt: null,
      hasUnclearedBatches: false,
    });
    const checkedAt = new Date();
    await replicaA.recordAdoptionCheck(first!, checkedAt);
    await replicaA.release(first!, { outcome: 'drained', events: 7 });
    expect(first!.held).toBe(false);

    const second = await replicaB.acquire(memberId);
    expect(second!.previous.cleanlyFinished).toBe(true);
    expect(second!.previous.adoptionCheckedAt?.getTime()).toBe(checkedAt.getTime());
    await replicaB.release(second!, { outcome: 'failed', events: 0, error: 'boom' });

    const third = await replicaA.acquire(memberId);
    expect(third!.previous.cleanlyFinished).toBe(false);
    await replicaA.release(third!, { outcome: 'drained', events: 0 });
    const [state]: Record<string, unknown>[] = await dataSource.query(
      `SELECT total_drained_events, last_drain_outcome, lease_holder FROM offline_queue_states
       WHERE member_id = $1`,
      [memberId],
    );
    expect(state).toEqual({
      total_drained_events: '7',
      last_drain_outcome: 'drained',
      lease_holder: null,
    });
  });

  it('tells the new holder whether the ledger holds batches committed but not cleared', async () => {
    const memberId = nextPortal();
    await dataSource.query(
      `INSERT INTO drain_batches (member_id, process_id, state, event_count)
       VALUES ($1, 'p-cleared', 'cleared', 5), ($2, 'p-other-portal', 'committed', 5)`,
      [memberId, `${memberId}-other`],
    );
    const clean = await replicaA.acquire(memberId);
    expect(clean!.previous.hasUnclearedBatches).toBe(false);
    await replicaA.release(clean!, { outcome: 'drained', events: 0 });

    await dataSource.query(
      `INSERT INTO drain_batches (member_id, process_id, state, event_count)
       VALUES ($1, 'p-uncleared', 'committed', 5)`,
      [memberId],
    );
    const recovering = await replicaB.acquire(memberId);
    expect(recovering!.previous.hasUnclearedBatches).toBe(true);
    await replicaB.release(recovering!, { outcome: 'drained', events: 0 });
  });

  it('reports a takeover as unclean when a batch committed while it waited is not in its flag', async () => {
    const memberId = nextPortal();
    const holder = await replicaA.acquire(memberId);
    clearInterval(holder!.renewal);
    // The holder's commit transaction: it holds the state row while the lease runs out, and
    // commits a batch only after the other replica's acquire has started waiting for the row.
    const commit = dataSource.createQueryRunner();
    await commit.connect();
    try {
      await commit.startTransaction();
      await commit.query(
        `UPDATE offline_queue_states SET lease_expires_at = now() - interval '1 second'
         WHERE member_id = $1`,
        [memberId],
      );
      await commit.query(
        `INSERT INTO drain_batches (member_id, process_id, state, event_count)
         VALUES ($1, 'p-late', 'committed', 1)`,
        [memberId],
      );
      const takeover = replicaB.acquire(memberId);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await commit.commitTransaction();
      const lease = await takeover;
      expect(lease).not.toBeNull();
      // The statement's snapshot predates the batch; the drain reads the ledger after any unclean pass.
      expect(lease!.previous).toMatchObject({ hasUnclearedBatches: false, cleanlyFinished: false });
      await replicaB.release(lease!, { outcome: 'drained', events: 0 });
    } finally {
      await commit.release();
    }
  });

  it('treats a pass that never finished (a crash) as unclean', async () => {
    const memberId = nextPortal();
    const crashed = await replicaA.acquire(memberId);
    clearInterval(crashed!.renewal);
    await replicaA.release(crashed!, { outcome: 'drained', events: 0 });
    const next = await replicaA.acquire(memberId);
    clearInterval(next!.renewal); // crashes without releasing
    await expireNow(memberId);
    const afterCrash = await replicaB.acquire(memberId);
    expect(afterCrash!.previous.cleanlyFinished).toBe(false);
    await replicaB.release(afterCrash!, { outcome: 'drained', events: 0 });
  });
  it('keeps the lease for one more pass when another replica asked for a drain during the pass', async () => {
    const memberId = nextPortal();
    const holder = await replicaA.acquire(memberId);
    expect(await replicaB.requestFromHolder(memberId)).toBeNull();

    expect(await replicaA.releaseUnlessRequested(holder!, { outcome: 'drained', events: 4 })).toBe(
      false,
    );
    expect(holder!.held).toBe(true);
    expect(await replicaB.acquire(memberId)).toBeNull();
    expect(await replicaA.releaseUnlessRequested(holder!, { outcome: 'drained', events: 4 })).toBe(
      true,
    );
    expect(holder!.held).toBe(false);
    const next = await replicaB.acquire(memberId);
    expect(next).not.toBeNull();
    await replicaB.release(next!, { outcome: 'drained', events: 0 });
  });

  it('lets the requester drain itself when the holder let go just before the request', async () => {
    const memberId = nextPortal();
    const holder = await replicaA.acquire(memberId);
    expect(await replicaA.releaseUnlessRequested(holder!, { outcome: 'drained', events: 0 })).toBe(
      true,
    );
    const requester = await replicaB.requestFromHolder(memberId);
    expect(requester).not.toBeNull();
    await replicaB.release(requester!, { outcome: 'drained', events: 0 });
  });

  it('refuses to end a pass on a lease that was lost', async () => {
    const memberId = nextPortal();
    const stale = await replicaA.acquire(memberId);
    clearInterval(stale!.renewal);
    await expireNow(memberId);
    const taker = await replicaB.acquire(memberId);
    await expect(
      replicaA.releaseUnlessRequested(stale!, { outcome: 'drained', events: 0 }),
    ).rejects.toBeInstanceOf(DrainLeaseLostError);
    await replicaB.release(taker!, { outcome: 'drained', events: 0 });
  });
});
