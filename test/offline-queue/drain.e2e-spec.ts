import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { DrainLeaseService } from '../../src/offline-queue/drain-lease.service';
import { DrainLedger } from '../../src/offline-queue/drain-ledger.service';
import { DrainService } from '../../src/offline-queue/drain.service';
import { TEST_ADMIN_TOKEN, TestApp } from '../support/test-app';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  logLines,
  startDrainHarness,
  storedCounts,
  withInsertTrigger,
} from './drain-harness';

describe('drainPortal against the emulator', () => {
  let h: DrainHarness;
  let app: TestApp;
  let drains: DrainService;

  beforeAll(async () => {
    h = await startDrainHarness();
    // Fixed pages of 50: growing pages on a backlog are drain-backlog.e2e-spec.ts's.
    app = await h.startApp({ DRAIN_PAGE_SIZE: '50', DRAIN_MAX_PAGE_SIZE: '50' });
    drains = app.app.get(DrainService);
  });

  afterAll(async () => {
    await h?.close();
  });

  async function queueOf(memberId: string): Promise<{ total: number; reserved: number }> {
    const stats = await h.emulator.control.stats(memberId);
    return { total: stats.queue.total, reserved: stats.queue.reserved };
  }

  /** A drain that died after Bitrix24 answered its get: rows reserved, the pass never finished. */
  async function crashAfterGet(memberId: string, limit: number): Promise<string> {
    const lease = await app.app.get(DrainLeaseService).acquire(memberId);
    clearInterval(lease!.renewal);
    const page = await app.app
      .get(Bitrix24Client)
      .operationsFor(memberId)
      .offlineGet({ clear: false, limit });
    await h.sql.query(
      `UPDATE offline_queue_states SET lease_expires_at = now() - interval '1 second'
       WHERE member_id = $1`,
      [memberId],
    );
    return page.process_id!;
  }

  it('drains 1,000 events across 20 pages: each stored once, nothing left queued or reserved, one request per page', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 1000, notify: false });

    const requestsBefore = (await h.emulator.control.stats(portal.memberId)).httpRequests;
    const report = await drains.drainPortal(portal.memberId);

    expect(report).toMatchObject({
      memberId: portal.memberId,
      outcome: 'drained',
      events: 1000,
      pages: 20,
      recoveredBatches: 0,
      deliveryMode: 'exactly-once',
    });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 1000,
      distinctQueueIds: 1000,
    });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.reservedProcessIds).toEqual([]);
    // The first page by itself, then each batch clears page N and gets page N+1 (the 20th batch
    // clears the last page and finds the queue empty), plus one event.offline.list for adoption.
    expect(stats.httpRequests - requestsBefore).toBe(1 + 20 + 1);
    const { rows: batches } = await h.sql.query(
      `SELECT state, count(*)::int AS count, sum(event_count)::int AS events FROM drain_batches
       WHERE member_id = $1 GROUP BY state`,
      [portal.memberId],
    );
    expect(batches).toEqual([{ state: 'cleared', count: 20, events: 1000 }]);
    const { rows: events } = await h.sql.query(
      `SELECT count(*)::int AS without_batch FROM stored_events
       WHERE member_id = $1 AND (process_id IS NULL OR message_id IS NULL OR bitrix_timestamp IS NULL)`,
      [portal.memberId],
    );
    expect(events).toEqual([{ without_batch: 0 }]);
  }, 60_000);

  it('stores the rows exactly as Bitrix24 sent them, with their ordering key', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: [{ event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: '77' } } }],
      notify: false,
    });
    await drains.drainPortal(portal.memberId);
    const { rows } = await h.sql.query<{ status: string; additional: unknown }>(
      `SELECT event_name, data, additional, ordering_key, status, source FROM stored_events
       WHERE member_id = $1`,
      [portal.memberId],
    );
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row).toMatchObject({
      event_name: 'ONCRMDEALUPDATE',
      data: { FIELDS: { ID: '77' } },
      ordering_key: 'CRMDEAL:77',
      source: 'offline',
    });
    expect(row.additional).toHaveProperty('user_id');
    expect(['pending', 'unhandled']).toContain(row.status);
  });

  it('adopts a reserved batch left by a crashed drain (reserved in Bitrix24, unknown to the database)', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 10, notify: false });
    expect((await drains.drainPortal(portal.memberId)).outcome).toBe('drained');
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120, notify: false });

    const orphan = await crashAfterGet(portal.memberId, 30);
    expect((await h.emulator.control.stats(portal.memberId)).reservedProcessIds).toEqual([orphan]);

    const report = await drains.drainPortal(portal.memberId);
    expect(report).toMatchObject({ outcome: 'drained', recoveredBatches: 1, events: 120 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 130,
      distinctQueueIds: 130,
    });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
    expect(logLines(app.logs, portal.memberId, 'reserved batch recovered')).toHaveLength(1);
  });

  it('resumes a batch that was committed but never cleared, without storing anything twice', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 80, notify: false });
    const leases = app.app.get(DrainLeaseService);
    const lease = await leases.acquire(portal.memberId);
    const page = await app.app
      .get(Bitrix24Client)
      .operationsFor(portal.memberId)
      .offlineGet({ clear: false, limit: 50 });
    await app.app.get(DrainLedger).commitPage(lease!, page.process_id, page.events);
    clearInterval(lease!.renewal); // crashed before the clear
    await h.sql.query(
      `UPDATE offline_queue_states SET lease_expires_at = now() - interval '1 second'
       WHERE member_id = $1`,
      [portal.memberId],
    );
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 50, distinctQueueIds: 50 });

    const report = await drains.drainPortal(portal.memberId);
    expect(report).toMatchObject({ outcome: 'drained', recoveredBatches: 1, events: 80 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 80, distinctQueueIds: 80 });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
    const { rows } = await h.sql.query(
      `SELECT count(*)::int AS uncleared FROM drain_batches WHERE member_id = $1 AND state <> 'cleared'`,
      [portal.memberId],
    );
    expect(rows).toEqual([{ uncleared: 0 }]);
  });

  it('never runs two drains of one portal at once: a second caller gets busy', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 200, notify: false });
    await h.emulator.control.setFaults(portal.memberId, { latencyMs: 150 });
    const [first, second] = await Promise.all([
      drains.drainPortal(portal.memberId),
      new Promise((resolve) => setTimeout(resolve, 50)).then(() =>
        drains.drainPortal(portal.memberId),
      ),
    ]);
    await h.emulator.control.clearFaults(portal.memberId);
    expect([first.outcome, second.outcome].sort()).toEqual(['busy', 'drained']);
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 200,
      distinctQueueIds: 200,
    });
    expect((await h.emulator.control.stats(portal.memberId)).maxConcurrentOfflineGet).toBe(1);
  });

  it('serves a drain request that reached another replica during a pass with one more pass of the holder', async () => {
    const replica = await h.startApp();
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 100, notify: false });
    await h.emulator.control.setFaults(portal.memberId, { latencyMs: 300 });
    const holderPass = drains.drainPortal(portal.memberId);
    await eventually(
      () => storedCounts(h.sql, portal.memberId),
      (counts) => counts.rows > 0,
    );
    // New events, and the notification about them lands on the other replica.
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: 10,
      event: 'ONCRMLEADADD',
      notify: false,
    });
    expect(await replica.app.get(DrainService).drainPortal(portal.memberId)).toMatchObject({
      outcome: 'busy',
    });

    expect(await holderPass).toMatchObject({ outcome: 'drained', events: 110 });
    await h.emulator.control.clearFaults(portal.memberId);
    expect(logLines(app.logs, portal.memberId, 'drain requested by another replica')).toHaveLength(
      1,
    );
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 110,
      distinctQueueIds: 110,
    });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
  }, 30_000);

  it('drains a portal installed without rest_offline_extended with clear=1, at-most-once', async () => {
    const portal = await installBoundPortal(h, app, {
      portal: { features: { rest_offline_extended: false } },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 120, notify: false });

    const report = await drains.drainPortal(portal.memberId);
    expect(report).toMatchObject({ outcome: 'drained', events: 120, deliveryMode: 'at-most-once' });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 120,
      distinctQueueIds: 120,
    });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
    const { rows } = await h.sql.query(
      `SELECT count(*)::int AS with_batch FROM stored_events
       WHERE member_id = $1 AND process_id IS NOT NULL`,
      [portal.memberId],
    );
    expect(rows).toEqual([{ with_batch: 0 }]);
  });

  it('switches a portal whose plan lost rest_offline_extended (WRONG_LICENSE) to at-most-once, shows it, and switches back when the feature returns', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.setFaults(portal.memberId, {
      features: { rest_offline_extended: false },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 70, notify: false });

    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      events: 70,
      deliveryMode: 'at-most-once',
    });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 70, distinctQueueIds: 70 });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
    const { rows } = await h.sql.query(`SELECT delivery_mode FROM portals WHERE member_id = $1`, [
      portal.memberId,
    ]);
    expect(rows).toEqual([{ delivery_mode: 'at-most-once' }]);

    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5, notify: false });
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      events: 5,
      deliveryMode: 'at-most-once',
    });
    // Logged once, when the mode changed, not on every pass.
    expect(logLines(app.logs, portal.memberId, 'portal refuses clear=0')).toHaveLength(1);

    const shown = await fetch(`${app.url}/admin/portals/${portal.memberId}`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(shown.status).toBe(200);
    expect(await shown.json()).toMatchObject({
      memberId: portal.memberId,
      deliveryMode: 'at-most-once',
    });

    await h.emulator.control.setFaults(portal.memberId, {
      features: { rest_offline_extended: true },
    });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 3, notify: false });
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      events: 3,
      deliveryMode: 'exactly-once',
    });
    expect(logLines(app.logs, portal.memberId, 'portal accepts clear=0 again')).toHaveLength(1);
  });

  it('recovers a stranded batch even after the plan lost rest_offline_extended', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 90, notify: false });
    await crashAfterGet(portal.memberId, 50);
    await h.emulator.control.setFaults(portal.memberId, {
      features: { rest_offline_extended: false },
    });

    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      recoveredBatches: 1,
      events: 90,
      deliveryMode: 'at-most-once',
    });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 90, distinctQueueIds: 90 });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
  });

  it('reports a portal that is not active without calling it', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5, notify: false });
    await h.sql.query(`UPDATE portals SET status = 'uninstalled' WHERE member_id = $1`, [
      portal.memberId,
    ]);
    const before = (await h.emulator.control.stats(portal.memberId)).httpRequests;
    expect(await drains.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'portal_not_active',
      events: 0,
    });
    expect(await drains.drainPortal('no-such-portal')).toMatchObject({
      outcome: 'portal_not_active',
    });
    expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(before);
  });

  it('keeps draining through terminated database connections (the pool reconnects)', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 400, notify: false });
    await h.emulator.control.setFaults(portal.memberId, { latencyMs: 200 });
    const running = drains.drainPortal(portal.memberId);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const { rows: terminated } = await h.sql.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    expect(terminated.length).toBeGreaterThan(0);
    const report = await running;
    await h.emulator.control.clearFaults(portal.memberId);
    if (report.outcome !== 'drained') {
      // A commit caught by the cut fails the pass; the next one resumes.
      await h.sql.query(
        `UPDATE offline_queue_states SET lease_expires_at = now() WHERE member_id = $1`,
        [portal.memberId],
      );
      expect((await drains.drainPortal(portal.memberId)).outcome).toBe('drained');
    }
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 400,
      distinctQueueIds: 400,
    });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
  }, 60_000);

  it('clears nothing it could not commit when the database fails mid-drain, and the next pass resumes', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 250, notify: false });
    // The third page's commit fails, as a database that went away would make it.
    const failed = await withInsertTrigger(
      h.sql,
      {
        name: 'refuse_third_batch',
        table: 'drain_batches',
        body: `
        IF (SELECT count(*) FROM drain_batches WHERE member_id = NEW.member_id) >= 2 THEN
          RAISE EXCEPTION 'database unavailable';
        END IF;
        RETURN NEW;`,
      },
      () => drains.drainPortal(portal.memberId),
    );
    expect(failed).toMatchObject({ outcome: 'failed', events: 100, pages: 2 });
    expect(failed.error).toContain('database unavailable');
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 100,
      distinctQueueIds: 100,
    });
    // The uncommitted third page is still reserved in Bitrix24: nothing uncommitted was cleared.
    const stranded = await h.emulator.control.stats(portal.memberId);
    expect(stranded.queue).toMatchObject({ total: 150, reserved: 50 });
    expect(stranded.reservedProcessIds).toHaveLength(1);

    const next = await drains.drainPortal(portal.memberId);
    expect(next).toMatchObject({ outcome: 'drained', recoveredBatches: 1, events: 150 });
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 250,
      distinctQueueIds: 250,
    });
    expect(await queueOf(portal.memberId)).toEqual({ total: 0, reserved: 0 });
  });
  it('exports drain and inbox metrics, none of them labelled by portal', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 60, notify: false });
    await drains.drainPortal(portal.memberId);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    for (const name of [
      'offline_queue_drained_events_total{delivery_mode="exactly-once"}',
      'offline_queue_drained_pages_total',
      'offline_queue_drains_total{outcome="drained"}',
      'offline_queue_drain_duration_seconds_bucket',
      'offline_queue_event_lag_seconds_bucket',
      'offline_queue_recovered_batches_total',
      'offline_queue_stalest_portal_seconds',
      'inbox_events{status="pending"}',
      'inbox_events{status="dead"}',
      'inbox_oldest_pending_age_seconds',
      'inbox_handler_runs_total',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).not.toContain(portal.memberId);
    expect(text).not.toMatch(/member_?id=/i);
  });
});
