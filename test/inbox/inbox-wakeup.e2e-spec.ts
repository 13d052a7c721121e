import { startTestApp, type TestApp } from '../support/test-app';
import { eventually } from '../offline-queue/drain-harness';
import {
  genuineEventBody,
  Harness,
  installViaEvent,
  postEvent,
  startHarness,
} from '../webhooks/webhook-harness';

/**
 * Replica A only stores events (INBOX_CONCURRENCY=0); replica B runs handlers but would look for
 * work only every ten minutes. Events stored through A still start on B at once: A's commit
 * NOTIFYs, B LISTENs.
 */
describe('inbox wake-up across replicas', () => {
  let h: Harness;
  let worker: TestApp;

  beforeAll(async () => {
    h = await startHarness({ INBOX_CONCURRENCY: '0' });
    worker = await startTestApp({
      databaseUrl: h.database.url,
      env: { BITRIX24_OAUTH_URL: h.emulator.url, INBOX_POLL_INTERVAL_MS: '600000' },
    });
  });

  afterAll(async () => {
    await worker?.close();
    await h?.close();
  });

  async function attemptsOf(memberId: string): Promise<number[]> {
    const { rows } = await h.sql.query<{ attempts: number }>(
      'SELECT attempts FROM stored_events WHERE member_id = $1 ORDER BY id',
      [memberId],
    );
    return rows.map((row) => row.attempts);
  }

  it('an online event stored by one replica starts on another without waiting for its poll', async () => {
    const portal = await installViaEvent(h);
    // Let the worker's first look at start-up pass.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const response = await postEvent(
      h,
      genuineEventBody(portal, 'ONCRMDEALUPDATE', { data: { FIELDS: { ID: '11' } } }),
    );
    expect(response.status).toBe(200);

    expect(
      await eventually(
        () => attemptsOf(portal.memberId),
        (a) => a[0] >= 1,
        10_000,
      ),
    ).toEqual([1]);
  });

  it('offline events drained by one replica start on another at once', async () => {
    const portal = await installViaEvent(h);
    await new Promise((resolve) => setTimeout(resolve, 300));

    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 5 });

    const attempts = await eventually(
      () => attemptsOf(portal.memberId),
      (seen) => seen.length === 5 && seen.every((count) => count >= 1),
      10_000,
    );
    expect(attempts).toEqual([1, 1, 1, 1, 1]);
  });
});
