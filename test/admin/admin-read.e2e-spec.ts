import { DataSource } from 'typeorm';
import { StoredEventEntity } from '../../src/inbox/stored-event.entity';
import { DrainBatchEntity } from '../../src/offline-queue/drain-batch.entity';
import { OfflineQueueStateEntity } from '../../src/offline-queue/offline-queue-state.entity';
import { PortalStatusChangeEntity } from '../../src/portals/portal-status-change.entity';
import { PortalTokenEntity } from '../../src/portals/portal-token.entity';
import { PortalEntity } from '../../src/portals/portal.entity';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_ADMIN_TOKEN, TestApp } from '../support/test-app';
import { arrangeAttempt, arrangeEvents, arrangePortal, newMemberId } from './admin-fixtures';
import { bearer } from './admin-routes';

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
interface EventItem {
  id: string;
  memberId: string;
  status: string;
  eventName: string;
  source: string;
  data: unknown;
}
interface ErrorBody {
  error: { code: string; message: string };
}

describe('admin API read side', () => {
  let database: TestDatabase;
  let testApp: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    testApp = await startTestApp({ databaseUrl: database.url });
    dataSource = testApp.app.get(DataSource);
  });

  afterAll(async () => {
    await testApp?.close();
    await database?.drop();
  });

  const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${testApp.url}${path}`, { headers: bearer(TEST_ADMIN_TOKEN) });
    return { status: response.status, body: (await response.json()) as T };
  };

  /** Follows nextCursor to the end; `between` runs after every page. */
  async function collect<T>(
    path: string,
    between: () => Promise<void> = async () => undefined,
  ): Promise<{ items: T[]; pages: number }> {
    const items: T[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const separator = path.includes('?') ? '&' : '?';
      const url: string = cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path;
      const { status, body } = await get<Page<T>>(url);
      expect(status).toBe(200);
      items.push(...body.items);
      cursor = body.nextCursor;
      pages += 1;
      await between();
    } while (cursor);
    return { items, pages };
  }

  describe('pagination under concurrent inserts', () => {
    it('returns every stored event exactly once across pages, newest first and oldest first', async () => {
      const portal = await arrangePortal(dataSource);
      const existing = await arrangeEvents(dataSource, portal.memberId, 53);
      const expected = existing.map((event) => event.id).sort();

      for (const order of ['desc', 'asc']) {
        const { items, pages } = await collect<EventItem>(
          `/admin/events?memberId=${portal.memberId}&limit=7&order=${order}`,
          // Rows keep arriving while the operator pages through.
          async () => {
            await arrangeEvents(dataSource, portal.memberId, 3);
          },
        );
        expect(pages).toBeGreaterThanOrEqual(8);
        const ids = items.map((item) => item.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.filter((id) => expected.includes(id)).sort()).toEqual(expected);
        const numeric = ids.map(BigInt);
        const sorted = [...numeric].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(numeric).toEqual(order === 'asc' ? sorted : sorted.reverse());
      }
    });

    it('returns every portal of a status exactly once while other portals are installed', async () => {
      const status = 'payment_required';
      const existing = await Promise.all(
        Array.from({ length: 23 }, () => arrangePortal(dataSource, { status })),
      );
      const expected = existing.map((portal) => portal.memberId).sort();
      const { items } = await collect<{ memberId: string; status: string }>(
        `/admin/portals?status=${status}&limit=4`,
        async () => {
          await arrangePortal(dataSource, { status });
        },
      );
      const memberIds = items.map((item) => item.memberId);
      expect(new Set(memberIds).size).toBe(memberIds.length);
      expect(memberIds.filter((id) => expected.includes(id)).sort()).toEqual(expected);
      expect(items.every((item) => item.status === status)).toBe(true);
    });

    it('keeps inserts that run truly in parallel from duplicating or skipping rows', async () => {
      const portal = await arrangePortal(dataSource);
      const existing = await arrangeEvents(dataSource, portal.memberId, 40);
      let inserting = true;
      const inserter = (async () => {
        while (inserting) await arrangeEvents(dataSource, portal.memberId, 2);
      })();
      try {
        const { items } = await collect<EventItem>(
          `/admin/events?memberId=${portal.memberId}&limit=5`,
        );
        const ids = items.map((item) => item.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const event of existing) expect(ids).toContain(event.id);
      } finally {
        inserting = false;
        await inserter;
      }
    });
  });

  describe('event filters', () => {
    it('filters by portal, name, status, source and time window together', async () => {
      const portal = await arrangePortal(dataSource);
      const old = new Date(Date.now() - 3600_000);
      await arrangeEvents(dataSource, portal.memberId, 2, { receivedAt: old });
      const wanted = await arrangeEvents(dataSource, portal.memberId, 3, {
        eventName: 'ONCRMCONTACTADD',
        status: 'dead',
      });
      await arrangeEvents(dataSource, portal.memberId, 2, { eventName: 'ONCRMCONTACTADD' });
      await arrangeEvents(dataSource, portal.memberId, 1, {
        source: 'online',
        queueId: null,
        eventName: 'ONCRMCONTACTADD',
        status: 'dead',
      });
      const since = new Date(Date.now() - 600_000).toISOString();
      const until = new Date(Date.now() + 600_000).toISOString();
      const { status, body } = await get<Page<EventItem>>(
        `/admin/events?memberId=${portal.memberId}&eventName=onCrmContactAdd&status=dead` +
          `&source=offline&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`,
      );
      expect(status).toBe(200);
      expect(body.items.map((item) => item.id).sort()).toEqual(wanted.map((e) => e.id).sort());
      expect(body.nextCursor).toBeNull();

      const before = await get<Page<EventItem>>(
        `/admin/events?memberId=${portal.memberId}&until=${encodeURIComponent(
          new Date(old.getTime() + 1000).toISOString(),
        )}`,
      );
      expect(before.body.items).toHaveLength(2);
    });
  });

  describe('hostile and malformed input', () => {
    const sqlLike = "' OR '1'='1";
    const badRequests: ReadonlyArray<[string, string]> = [
      ['SQL in memberId', `/admin/events?memberId=${encodeURIComponent(sqlLike)}`],
      [
        'SQL in eventName',
        `/admin/events?eventName=${encodeURIComponent('X; DROP TABLE stored_events;--')}`,
      ],
      ['SQL in status', `/admin/events?status=${encodeURIComponent(`pending${sqlLike}`)}`],
      ['unknown status', '/admin/events?status=archived'],
      ['status in the wrong case', '/admin/events?status=PENDING'],
      ['two statuses', '/admin/events?status=pending&status=dead'],
      ['unknown source', '/admin/events?source=email'],
      ['since that is not a date', '/admin/events?since=yesterday'],
      ['since that is an impossible date', '/admin/events?since=2024-13-45T00:00:00Z'],
      ['since in year zero', '/admin/events?since=0000-01-01T00:00:00Z'],
      ['until beyond year 9999', '/admin/events?until=%2B010000-01-01T00:00:00Z'],
      ['since with an impossible offset', '/admin/events?since=2024-01-01T00:00:00%2B99:00'],
      ['SQL in until', `/admin/events?until=${encodeURIComponent("2024-01-01' OR 1=1 --")}`],
      ['since after until', '/admin/events?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z'],
      ['unknown order', '/admin/events?order=sideways'],
      ['limit 0', '/admin/events?limit=0'],
      ['limit above the maximum', '/admin/events?limit=201'],
      ['negative limit', '/admin/events?limit=-1'],
      ['fractional limit', '/admin/events?limit=1.5'],
      ['limit in exponent notation', '/admin/events?limit=1e2'],
      ['limit that is not a number', '/admin/events?limit=ten'],
      ['unknown parameter', '/admin/events?drop=table'],
      ['cursor with characters outside base64url', '/admin/events?cursor=%21%21%21'],
      ['empty cursor', '/admin/events?cursor='],
      [
        'cursor of random base64',
        `/admin/events?cursor=${Buffer.from('garbage\u0000').toString('base64url')}`,
      ],
      [
        'cursor of JSON with no key',
        `/admin/events?cursor=${Buffer.from('{"v":1}').toString('base64url')}`,
      ],
      [
        'cursor of a JSON array',
        `/admin/events?cursor=${Buffer.from('[1,2]').toString('base64url')}`,
      ],
      ['cursor of SQL', `/admin/events?cursor=${Buffer.from(`1${sqlLike}`).toString('base64url')}`],
      ['oversized cursor', `/admin/events?cursor=${'A'.repeat(600)}`],
      ['SQL in portal status', `/admin/portals?status=${encodeURIComponent(`active${sqlLike}`)}`],
      ['unknown portal status', '/admin/portals?status=paused'],
      ['portal limit above the maximum', '/admin/portals?limit=1000'],
      ['malformed portal cursor', '/admin/portals?cursor=not*a*cursor'],
      ['stats top above the maximum', '/admin/stats?top=1000'],
      ['stats window of zero minutes', '/admin/stats?minutes=0'],
      ['SQL in a portal id', `/admin/portals/${encodeURIComponent(`abc${sqlLike}`)}`],
      ['a portal id with a slash', `/admin/portals/${encodeURIComponent('abc/def')}`],
      ['SQL in an event id', `/admin/events/${encodeURIComponent('1 OR 1=1')}`],
      ['an event id of zero', '/admin/events/0'],
      ['a negative event id', '/admin/events/-5'],
      ['an event id beyond bigint', '/admin/events/99999999999999999999'],
      ['an event id beyond bigint by one', '/admin/events/9223372036854775808'],
      ['an event id in hex', '/admin/events/0x10'],
    ];

    it.each(badRequests)('answers 400 (never 500) to %s', async (_label, path) => {
      const counts = async (): Promise<number[]> => [
        await dataSource.getRepository(StoredEventEntity).count(),
        await dataSource.getRepository(PortalEntity).count(),
      ];
      const before = await counts();
      const response = await fetch(`${testApp.url}${path}`, { headers: bearer(TEST_ADMIN_TOKEN) });
      expect(response.status).toBe(400);
      const body = (await response.json()) as ErrorBody;
      expect(typeof body.error.code).toBe('string');
      expect(body.error.message.length).toBeGreaterThan(0);
      expect(await counts()).toEqual(before);
    });

    it('refuses a cursor taken from another query', async () => {
      const portal = await arrangePortal(dataSource);
      await arrangeEvents(dataSource, portal.memberId, 3);
      const first = await get<Page<EventItem>>(`/admin/events?memberId=${portal.memberId}&limit=1`);
      const cursor = encodeURIComponent(first.body.nextCursor!);
      for (const path of [
        `/admin/events?memberId=${portal.memberId}&limit=1&order=asc&cursor=${cursor}`,
        `/admin/events?limit=1&cursor=${cursor}`,
        `/admin/portals?cursor=${cursor}`,
      ]) {
        const { status, body } = await get<ErrorBody>(path);
        expect(status).toBe(400);
        expect(body.error.code).toBe('invalid_cursor');
      }
    });

    it('refuses a cursor whose key was edited', async () => {
      const portal = await arrangePortal(dataSource);
      await arrangeEvents(dataSource, portal.memberId, 3);
      const first = await get<Page<EventItem>>(`/admin/events?memberId=${portal.memberId}&limit=1`);
      const payload = JSON.parse(Buffer.from(first.body.nextCursor!, 'base64url').toString()) as {
        k: string;
      };
      const forged = Buffer.from(JSON.stringify({ ...payload, k: `${payload.k} OR 1=1` })).toString(
        'base64url',
      );
      const { status, body } = await get<ErrorBody>(
        `/admin/events?memberId=${portal.memberId}&limit=1&cursor=${forged}`,
      );
      expect(status).toBe(400);
      expect(body.error.code).toBe('invalid_cursor');
    });

    it('refuses a cursor whose key is beyond the bigint range with 400, not 500', async () => {
      const portal = await arrangePortal(dataSource);
      await arrangeEvents(dataSource, portal.memberId, 3);
      const first = await get<Page<EventItem>>(`/admin/events?memberId=${portal.memberId}&limit=1`);
      const payload = JSON.parse(Buffer.from(first.body.nextCursor!, 'base64url').toString()) as {
        k: string;
      };
      const forged = Buffer.from(JSON.stringify({ ...payload, k: '9999999999999999999' })).toString(
        'base64url',
      );
      const { status, body } = await get<ErrorBody>(
        `/admin/events?memberId=${portal.memberId}&limit=1&cursor=${forged}`,
      );
      expect(status).toBe(400);
      expect(body.error.code).toBe('invalid_cursor');
    });

    it('answers 404 for ids that are well formed but unknown', async () => {
      const portal = await get<ErrorBody>(`/admin/portals/${newMemberId()}`);
      expect(portal.status).toBe(404);
      expect(portal.body.error.code).toBe('portal_not_found');
      const event = await get<ErrorBody>('/admin/events/9223372036854775807');
      expect(event.status).toBe(404);
      expect(event.body.error.code).toBe('event_not_found');
    });

    it('keeps serving after all of that', async () => {
      expect((await get('/admin/stats')).status).toBe(200);
      expect((await fetch(`${testApp.url}/health/ready`)).status).toBe(200);
    });
  });

  describe('portal detail', () => {
    it('shows status history, token expiry without tokens, bindings, queue lag, last drain and inbox', async () => {
      const portal = await arrangePortal(dataSource, {
        status: 'active',
        deliveryMode: 'at-most-once',
        planStatus: 'T',
        boundEvents: [
          { event: 'ONOFFLINEEVENT', offline: false },
          { event: 'ONCRMDEALUPDATE', offline: true },
        ],
        boundAt: new Date(),
        installedAt: new Date(Date.now() - 86_400_000),
      });
      const { memberId } = portal;
      await dataSource.getRepository(PortalStatusChangeEntity).save([
        { memberId, fromStatus: null, toStatus: 'new', reason: 'install page' },
        { memberId, fromStatus: 'new', toStatus: 'active', reason: 'events bound' },
      ]);
      const accessExpiresAt = new Date(Date.now() + 3600_000);
      const refreshExpiresAt = new Date(Date.now() + 20 * 86_400_000);
      await dataSource.getRepository(PortalTokenEntity).save({
        memberId,
        accessToken: 'v1:ciphertext-of-the-access-token',
        refreshToken: 'v1:ciphertext-of-the-refresh-token',
        accessExpiresAt,
        refreshExpiresAt,
        refreshedAt: new Date(),
        generation: 4,
        keyId: 'k1',
      });
      const requestedAt = new Date(Date.now() - 90_000);
      await dataSource.getRepository(OfflineQueueStateEntity).save({
        memberId,
        drainRequestedAt: requestedAt,
        lastDrainStartedAt: new Date(Date.now() - 300_000),
        lastDrainFinishedAt: new Date(Date.now() - 299_000),
        lastDrainOutcome: 'failed',
        lastDrainError: 'QUERY_LIMIT_EXCEEDED',
        lastDrainEvents: 12,
        totalDrainedEvents: '340',
      });
      await dataSource.getRepository(DrainBatchEntity).save([
        { memberId, processId: 'p1', state: 'committed', eventCount: 50 },
        { memberId, processId: 'p2', state: 'cleared', eventCount: 50 },
      ]);
      await arrangeEvents(dataSource, memberId, 2, { receivedAt: new Date(Date.now() - 120_000) });
      await arrangeEvents(dataSource, memberId, 3, { status: 'processed' });
      await arrangeEvents(dataSource, memberId, 1, { status: 'dead' });

      const { status, body } = await get<Record<string, unknown>>(`/admin/portals/${memberId}`);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        memberId,
        domain: portal.domain,
        status: 'active',
        planStatus: 'T',
        deliveryMode: 'at-most-once',
        boundEvents: [
          { event: 'ONOFFLINEEVENT', offline: false },
          { event: 'ONCRMDEALUPDATE', offline: true },
        ],
        token: {
          present: true,
          accessExpiresAt: accessExpiresAt.toISOString(),
          refreshExpiresAt: refreshExpiresAt.toISOString(),
          generation: 4,
          health: 'ok',
        },
        lastDrain: {
          outcome: 'failed',
          error: 'QUERY_LIMIT_EXCEEDED',
          events: 12,
          totalDrainedEvents: 340,
        },
        queue: {
          drainRequestedAt: requestedAt.toISOString(),
          waitingSince: requestedAt.toISOString(),
          unclearedBatches: 1,
          leaseHeld: false,
        },
        inbox: { pending: 2, processed: 3, failed: 0, dead: 1 },
        statusHistory: [
          { from: 'new', to: 'active', reason: 'events bound' },
          { from: null, to: 'new', reason: 'install page' },
        ],
      });
      const queue = body.queue as { lagSeconds: number };
      expect(queue.lagSeconds).toBeGreaterThanOrEqual(89);
      const inbox = body.inbox as { oldestPendingAgeSeconds: number };
      expect(inbox.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(119);
      expect(JSON.stringify(body)).not.toMatch(/ciphertext|accessToken|refreshToken/);

      const listed = await get<Page<Record<string, unknown>>>(`/admin/portals?limit=200`);
      expect(JSON.stringify(listed.body)).not.toMatch(/ciphertext/);
    });

    it('reports a wiped chain as missing', async () => {
      const { memberId } = await arrangePortal(dataSource, { status: 'deleted' });
      await dataSource.getRepository(PortalTokenEntity).save({ memberId, generation: 7 });
      const { body } = await get<{ token: { present: boolean; health: string } }>(
        `/admin/portals/${memberId}`,
      );
      expect(body.token).toMatchObject({ present: false, health: 'missing' });
    });
  });

  describe('event detail', () => {
    it('shows the stored data and the processing history, credentials masked', async () => {
      const { memberId } = await arrangePortal(dataSource);
      const [event] = await arrangeEvents(dataSource, memberId, 1, {
        status: 'processed',
        data: { FIELDS: { ID: '42' }, auth: { access_token: 'leaked-access-token' } },
        attempts: 2,
      });
      await arrangeAttempt(dataSource, event, { attempt: 1, outcome: 'failed', error: 'boom' });
      await arrangeAttempt(dataSource, event, {
        attempt: 2,
        trigger: 'replay',
        outcome: 'processed',
        error: null,
      });
      const { status, body } = await get<Record<string, unknown>>(`/admin/events/${event.id}`);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        id: event.id,
        memberId,
        source: 'offline',
        queueId: event.queueId,
        messageId: event.messageId,
        eventName: 'ONCRMDEALUPDATE',
        data: { FIELDS: { ID: '42' }, auth: '[redacted]' },
        status: 'processed',
        attempts: 2,
        history: [
          { attempt: 1, trigger: 'automatic', outcome: 'failed', error: 'boom' },
          { attempt: 2, trigger: 'replay', outcome: 'processed', error: null },
        ],
      });
      expect(JSON.stringify(body)).not.toContain('leaked-access-token');
    });
  });

  describe('stats', () => {
    it('counts by status and portal, drain throughput per minute, oldest pending and dead events', async () => {
      const isolated = await createTestDatabase();
      const app = await startTestApp({ databaseUrl: isolated.url });
      try {
        const source = app.app.get(DataSource);
        const busy = await arrangePortal(source);
        const quiet = await arrangePortal(source, { status: 'uninstalled' });
        const oldest = await arrangeEvents(source, busy.memberId, 1, {
          receivedAt: new Date(Date.now() - 150_000),
        });
        await arrangeEvents(source, busy.memberId, 4);
        await arrangeEvents(source, quiet.memberId, 1);
        // Two dead events of one object hold one line; a dead one without a key holds none.
        await arrangeEvents(source, quiet.memberId, 2, {
          status: 'dead',
          orderingKey: 'CRMDEAL:held',
        });
        await arrangeEvents(source, quiet.memberId, 1, { status: 'dead' });
        await arrangeEvents(source, quiet.memberId, 1, { status: 'unhandled' });
        await arrangeEvents(source, quiet.memberId, 1, { status: 'discarded' });
        await arrangeEvents(source, quiet.memberId, 3, { status: 'processed' });
        await arrangeEvents(source, quiet.memberId, 1, {
          source: 'online',
          queueId: null,
          status: 'processed',
        });

        const response = await fetch(`${app.url}/admin/stats?top=1&minutes=5`, {
          headers: bearer(TEST_ADMIN_TOKEN),
        });
        expect(response.status).toBe(200);
        const stats = (await response.json()) as {
          events: Record<string, unknown>;
          portals: Record<string, unknown>;
          topPortalsByPending: unknown[];
          drainThroughput: { minutes: number; events: number; perMinute: { events: number }[] };
        };
        expect(stats.events).toMatchObject({
          total: 15,
          byStatus: { pending: 6, processed: 4, failed: 0, dead: 3, unhandled: 1, discarded: 1 },
          dead: 3,
          blockedObjects: 1,
          oldestPending: { id: oldest[0].id, memberId: busy.memberId },
        });
        expect(
          (stats.events.oldestPending as { ageSeconds: number }).ageSeconds,
        ).toBeGreaterThanOrEqual(149);
        expect(stats.portals).toMatchObject({
          total: 2,
          byStatus: { active: 1, uninstalled: 1, new: 0 },
        });
        expect(stats.topPortalsByPending).toEqual([
          { memberId: busy.memberId, pending: 5, failed: 0, dead: 0 },
        ]);
        expect(stats.drainThroughput.minutes).toBe(5);
        expect(stats.drainThroughput.perMinute).toHaveLength(5);
        // Every offline event was stored within the window; the online one does not count.
        expect(stats.drainThroughput.events).toBe(14);
        expect(stats.drainThroughput.perMinute.reduce((sum, m) => sum + m.events, 0)).toBe(14);
      } finally {
        await app.close();
        await isolated.drop();
      }
    });
  });

  describe('HTTP metrics', () => {
    it('labels requests by route pattern and status class, never by id', async () => {
      const { memberId } = await arrangePortal(dataSource);
      await get(`/admin/portals/${memberId}`);
      await get(`/admin/portals/${newMemberId()}`);
      await fetch(`${testApp.url}/no/such/${memberId}`);
      const metrics = await (await fetch(`${testApp.url}/metrics`)).text();
      expect(metrics).toMatch(
        /http_requests_total\{method="GET",route="\/admin\/portals\/:memberId",status_class="2xx"\} \d+/,
      );
      expect(metrics).toMatch(
        /http_requests_total\{method="GET",route="\/admin\/portals\/:memberId",status_class="4xx"\} \d+/,
      );
      expect(metrics).toMatch(
        /http_requests_total\{method="GET",route="unmatched",status_class="4xx"\}/,
      );
      expect(metrics).toMatch(/http_request_duration_seconds_bucket\{/);
      expect(metrics).not.toContain(memberId);
    });
  });
});
