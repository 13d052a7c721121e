import { Client } from 'pg';
import { startEmulator, type RestRequestRecord, type RunningEmulator } from '../../src/emulator';
import { eventually } from '../offline-queue/drain-harness';
import { AppProcess, startAppProcess } from '../support/app-process';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';

/** A tight portal so that three unshared buckets would overrun it within seconds. */
const LIMIT = { rps: 2, burst: 50 };
const DEALS = 120;

/**
 * The most requests Bitrix24's bucket held at once over this sequence of arrivals: each adds 1,
 * the level drains at `rps` (the emulator's own rule).
 */
function peakLevel(requests: readonly RestRequestRecord[], rps: number): number {
  let level = 0;
  let peak = 0;
  let last = requests[0]?.receivedAt ?? 0;
  for (const request of [...requests].sort((a, b) => a.receivedAt - b.receivedAt)) {
    level = Math.max(0, level - ((request.receivedAt - last) / 1000) * rps) + 1;
    last = request.receivedAt;
    peak = Math.max(peak, level);
  }
  return peak;
}

/**
 * Three server processes on one database, each running the example handler (one crm.deal.get per
 * changed deal) while one of them drains the portal: all of them draw from the portal's one bucket.
 */
describe('one leaky bucket per portal across replicas', () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let sql: Client;
  let replicas: AppProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    emulator = await startEmulator({
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      rateLimit: LIMIT,
    });
    sql = new Client({ connectionString: database.url });
    await sql.connect();
    replicas = await Promise.all(
      [1, 2, 3].map(() =>
        startAppProcess({
          databaseUrl: database.url,
          env: {
            BITRIX24_OAUTH_URL: emulator.url,
            BITRIX24_RATE_LIMIT_RPS: String(LIMIT.rps),
            BITRIX24_RATE_LIMIT_BURST: String(LIMIT.burst),
            EXAMPLE_HANDLERS: 'true',
            INBOX_CONCURRENCY: '16',
          },
        }),
      ),
    );
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.kill();
    await sql?.end();
    await emulator?.close();
    await database?.drop();
  });

  it('handlers on three replicas and the drain never make the portal answer QUERY_LIMIT_EXCEEDED, and every deal is copied', async () => {
    const portal = await emulator.control.createPortal();
    const { delivered } = await emulator.control.install(portal.memberId, {
      mode: 'event',
      handlerUrl: `${replicas[0].url}/bitrix24/events`,
    });
    expect(delivered.status).toBe(200);
    const { ids } = await emulator.control.seedDeals(portal.memberId, {
      deals: Array.from({ length: DEALS }, (_, index) => ({ TITLE: `Deal ${index + 1}` })),
    });
    // Users change every deal; Bitrix24 stores the events and notifies the app.
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      events: ids.map((id) => ({ event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: String(id) } } })),
    });

    await eventually(
      async () => {
        const { rows } = await sql.query<{ copied: string }>(
          'SELECT count(*) AS copied FROM example_deals WHERE member_id = $1',
          [portal.memberId],
        );
        return Number(rows[0].copied);
      },
      (copied) => copied === DEALS,
      120_000,
    );

    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.rateLimitRefusals).toBe(0);
    expect(stats.queue.total).toBe(0);
    const requests = await emulator.control.requests(portal.memberId);
    expect(requests.filter((request) => request.outcome === 'QUERY_LIMIT_EXCEEDED')).toEqual([]);
    expect(requests.filter((request) => request.method === 'crm.deal.get').length).toBe(DEALS);
    expect(peakLevel(requests, LIMIT.rps)).toBeLessThanOrEqual(LIMIT.burst);

    const { rows: copies } = await sql.query<{ deal_id: string; title: string }>(
      'SELECT deal_id, title FROM example_deals WHERE member_id = $1 ORDER BY deal_id',
      [portal.memberId],
    );
    expect(copies.map((copy) => copy.title)).toEqual(ids.map((_, index) => `Deal ${index + 1}`));
    // The handlers ran on more than one replica, so the bucket was shared between processes.
    const copiers = replicas.filter((replica) =>
      replica.logs.some(
        (line) =>
          line.includes('"msg":"deal copied"') && line.includes(`"memberId":"${portal.memberId}"`),
      ),
    );
    expect(copiers.length).toBeGreaterThan(1);
  }, 180_000);
});
