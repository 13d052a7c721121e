import { DrainScheduler } from '../../src/offline-queue/drain-scheduler.service';
import { TEST_ADMIN_TOKEN, type TestApp } from '../support/test-app';
import {
  DrainHarness,
  eventually,
  installBoundPortal,
  startDrainHarness,
  storedCounts,
} from './drain-harness';

interface DrainHealth {
  consecutiveFailures: number;
  lastError: string | null;
  nextAttemptAt: string | null;
  inTrouble: boolean;
}

/**
 * A gateway in front of the portal answers 502/504 with an HTML page. A failed pass is retried by
 * the scheduler after a growing, jittered wait (not at the next fallback poll), the run of failures
 * shows in the admin API and the metrics, and once the portal heals everything drains exactly once.
 */
describe('drain retries of a portal behind a failing gateway', () => {
  let h: DrainHarness;
  let app: TestApp;

  beforeAll(async () => {
    h = await startDrainHarness();
    app = await h.startApp({
      DRAIN_PAGE_SIZE: '50',
      DRAIN_RETRY_BASE_MS: '100',
      DRAIN_RETRY_CAP_MS: '1600',
      // The fallback poll must not be what drains the portal here.
      POLL_INTERVAL_SECONDS: '3600',
    });
  });

  afterAll(async () => {
    await h?.close();
  });

  async function drainHealth(memberId: string): Promise<DrainHealth> {
    const response = await fetch(`${app.url}/admin/portals/${memberId}`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { drainHealth: DrainHealth }).drainHealth;
  }

  async function metricValue(name: string): Promise<number> {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.slice(name.length + 1));
  }

  it('backs off with growing waits while the gateway fails, then drains every event once', async () => {
    const portal = await installBoundPortal(h, app);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 230, notify: false });
    await h.emulator.control.setFaults(portal.memberId, { gatewayTimeoutRate: 1 });

    app.app.get(DrainScheduler).request(portal.memberId);

    // Each failure is recorded with a later retry time than the one before.
    const seen: DrainHealth[] = [];
    await eventually(
      async () => {
        const health = await drainHealth(portal.memberId);
        const last = seen.at(-1);
        if (
          health.consecutiveFailures > 0 &&
          health.consecutiveFailures !== last?.consecutiveFailures
        ) {
          seen.push(health);
        }
        return seen;
      },
      (runs) => runs.length >= 1 && runs.at(-1)!.consecutiveFailures >= 6,
      60_000,
    );
    for (let i = 1; i < seen.length; i += 1) {
      expect(seen[i].consecutiveFailures).toBeGreaterThan(seen[i - 1].consecutiveFailures);
      expect(Date.parse(seen[i].nextAttemptAt!)).toBeGreaterThan(
        Date.parse(seen[i - 1].nextAttemptAt!),
      );
    }
    const troubled = seen.at(-1)!;
    expect(troubled.inTrouble).toBe(true);
    expect(troubled.lastError).toMatch(/50[24]/);
    expect(await metricValue('offline_queue_portals_in_trouble')).toBe(1);
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({ rows: 0, distinctQueueIds: 0 });

    await h.emulator.control.clearFaults(portal.memberId);

    // No notification, no poll: the pending retry alone drains the portal.
    await eventually(
      () => storedCounts(h.sql, portal.memberId),
      (counts) => counts.rows >= 230,
      30_000,
    );
    const healthy = await eventually(
      () => drainHealth(portal.memberId),
      (health) => health.consecutiveFailures === 0,
      10_000,
    );
    expect(healthy).toEqual({
      consecutiveFailures: 0,
      lastError: null,
      nextAttemptAt: null,
      inTrouble: false,
    });
    expect(await metricValue('offline_queue_portals_in_trouble')).toBe(0);
    expect(await storedCounts(h.sql, portal.memberId)).toEqual({
      rows: 230,
      distinctQueueIds: 230,
    });
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.queue).toMatchObject({ total: 0, reserved: 0 });
  });
});
