import { INestApplication, Injectable, Module, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import type { InboxEvent } from '../../src/inbox/inbox-event';
import { InboxService } from '../../src/inbox/inbox.service';
import { OnBitrix24Event } from '../../src/inbox/on-bitrix24-event.decorator';
import { AppLogger, createPinoLogger } from '../../src/logging/app-logger';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_ENCRYPTION_KEY } from '../support/test-app';
import { eventually } from '../support/eventually';

interface Run {
  eventId: string;
  dealId: string;
  attempt: number;
  trigger: string;
  ok: boolean;
}

/** A vendor handler whose failures the test decides: it fails a deal's first `failures` runs. */
@Injectable()
class ScriptedDealHandler {
  readonly runs: Run[] = [];
  readonly failures = new Map<string, number>();

  @OnBitrix24Event('ONCRMDEALUPDATE', 'ONCRMDEALADD')
  async onDeal(event: InboxEvent): Promise<void> {
    const dealId = String((event.data as { FIELDS: { ID: string } }).FIELDS.ID);
    const remaining = this.failures.get(dealId) ?? 0;
    // A little latency, so out-of-order runs would have a chance to show.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const ok = remaining <= 0;
    this.runs.push({
      eventId: event.id,
      dealId,
      attempt: event.attempt,
      trigger: event.trigger,
      ok,
    });
    if (!ok) {
      this.failures.set(dealId, remaining - 1);
      throw new Error(`downstream system unavailable for deal ${dealId}`);
    }
  }
}

@Module({ providers: [ScriptedDealHandler] })
class ScriptedHandlersModule {}

/** A handler the first release did not have. */
@Injectable()
class DealDeleteHandler {
  readonly eventIds: string[] = [];

  @OnBitrix24Event('ONCRMDEALDELETE')
  onDelete(event: InboxEvent): void {
    this.eventIds.push(event.id);
  }
}

@Module({ providers: [DealDeleteHandler] })
class DealDeleteHandlersModule {}

describe('the inbox: handlers, retries, dead letters, replay', () => {
  let database: TestDatabase;
  let app: INestApplication;
  let inbox: InboxService;
  let dataSource: DataSource;
  let handler: ScriptedDealHandler;
  let sequence = 0;
  const memberId = 'inbox-portal-1';

  let config: AppConfig;
  const logger = new AppLogger(createPinoLogger('silent'));

  /** The real AppModule plus vendor handler modules, on the real HTTP adapter (not listening). */
  async function bootReplica(...handlerModules: Type[]): Promise<INestApplication> {
    @Module({
      imports: [
        AppModule.forRoot({ config, databaseUrl: database.url, logger }),
        ...handlerModules,
      ],
    })
    class InboxTestModule {}
    const replica = await NestFactory.create(InboxTestModule, new FastifyAdapter(), {
      logger,
      abortOnError: false,
    });
    await replica.init();
    return replica;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      BITRIX24_CLIENT_ID: TEST_CLIENT_ID,
      BITRIX24_CLIENT_SECRET: TEST_CLIENT_SECRET,
      TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      POLL_INTERVAL_SECONDS: '0',
      INBOX_MAX_ATTEMPTS: '3',
      INBOX_RETRY_BASE_SECONDS: '1',
      INBOX_CONCURRENCY: '4',
    });
    app = await bootReplica(ScriptedHandlersModule);
    inbox = app.get(InboxService);
    dataSource = app.get(DataSource);
    handler = app.get(ScriptedDealHandler);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  async function storeDealEvent(dealId: string, eventName = 'ONCRMDEALUPDATE'): Promise<string> {
    sequence += 1;
    const dedupKey = `dedup-${sequence}`;
    const { stored } = await inbox.storeOnlineEvent({
      memberId,
      eventName,
      data: { FIELDS: { ID: dealId } },
      bitrixTimestamp: new Date(),
      dedupKey,
    });
    expect(stored).toBe(true);
    const [row]: { id: string }[] = await dataSource.query(
      `SELECT id FROM stored_events WHERE member_id = $1 AND dedup_key = $2`,
      [memberId, dedupKey],
    );
    return String(row.id);
  }

  async function event(
    id: string,
  ): Promise<{ status: string; attempts: number; last_error: string | null }> {
    const [row]: { status: string; attempts: number; last_error: string | null }[] =
      await dataSource.query(
        `SELECT status, attempts, last_error FROM stored_events WHERE id = $1`,
        [id],
      );
    return row;
  }

  async function orderingKeyOf(id: string): Promise<string | null> {
    const [row]: { ordering_key: string | null }[] = await dataSource.query(
      `SELECT ordering_key FROM stored_events WHERE id = $1`,
      [id],
    );
    return row.ordering_key;
  }

  async function attempts(id: string): Promise<
    {
      attempt: number;
      trigger: string;
      outcome: string;
      handlers: string[];
      error: string | null;
      started_at: Date;
      finished_at: Date;
    }[]
  > {
    return dataSource.query(
      `SELECT attempt, trigger, outcome, handlers, error, started_at, finished_at
       FROM event_attempts WHERE event_id = $1 ORDER BY id`,
      [id],
    );
  }

  it('runs the handler once per stored event when it succeeds', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => storeDealEvent(`ok-${i}`)));
    await eventually(
      () => Promise.all(ids.map((id) => event(id))),
      (rows) => rows.every((row) => row.status === 'processed'),
    );
    for (const id of ids) {
      expect(handler.runs.filter((run) => run.eventId === id)).toHaveLength(1);
      expect(await attempts(id)).toEqual([
        expect.objectContaining({
          attempt: 1,
          trigger: 'automatic',
          outcome: 'processed',
          handlers: ['ScriptedDealHandler.onDeal'],
          error: null,
        }),
      ]);
    }
  });

  it('stores a repeated online delivery once', async () => {
    const input = {
      memberId,
      eventName: 'ONCRMDEALUPDATE',
      data: { FIELDS: { ID: 'repeat' } },
      bitrixTimestamp: null,
      dedupKey: 'same-delivery',
    };
    expect(await inbox.storeOnlineEvent(input)).toEqual({ stored: true });
    expect(await inbox.storeOnlineEvent(input)).toEqual({ stored: false });
  });

  it('retries a throwing handler with growing backoff, ends dead after INBOX_MAX_ATTEMPTS, and a replay runs it again', async () => {
    handler.failures.set('broken', 1000);
    const id = await storeDealEvent('broken');
    const dead = await eventually(
      () => event(id),
      (row) => row.status === 'dead',
    );
    expect(dead.attempts).toBe(3);
    expect(dead.last_error).toContain('downstream system unavailable for deal broken');

    const history = await attempts(id);
    expect(history.map((row) => [row.attempt, row.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'dead'],
    ]);
    // Base 1 s with equal jitter: the 1st wait is in [0.5, 1] s, the 2nd in [1, 2] s.
    const wait1 = history[1].started_at.getTime() - history[0].finished_at.getTime();
    const wait2 = history[2].started_at.getTime() - history[1].finished_at.getTime();
    expect(wait1).toBeGreaterThanOrEqual(450);
    expect(wait2).toBeGreaterThanOrEqual(950);
    expect(handler.runs.filter((run) => run.eventId === id)).toHaveLength(3);

    // Dead means no more automatic runs.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(handler.runs.filter((run) => run.eventId === id)).toHaveLength(3);

    handler.failures.set('broken', 0);
    const replayed = await inbox.replay(id);
    expect(replayed.status).toBe('processed');
    expect(replayed.lastError).toBeNull();
    const runs = handler.runs.filter((run) => run.eventId === id);
    expect(runs).toHaveLength(4);
    expect(runs[3]).toMatchObject({ trigger: 'replay', attempt: 4, ok: true });
    expect((await attempts(id)).at(-1)).toMatchObject({
      attempt: 4,
      trigger: 'replay',
      outcome: 'processed',
    });

    // A replay of a processed event runs the handlers again too: replay is explicit.
    await inbox.replay(id);
    expect(handler.runs.filter((run) => run.eventId === id)).toHaveLength(5);
  }, 30_000);

  it('handles changes of one object in order, even when an earlier change has to be retried', async () => {
    handler.failures.set('ordered', 1);
    const first = await storeDealEvent('ordered', 'ONCRMDEALADD');
    const second = await storeDealEvent('ordered');
    const third = await storeDealEvent('ordered');
    const unrelated = await storeDealEvent('unrelated-object');
    await eventually(
      () => Promise.all([first, second, third].map((id) => event(id))),
      (rows) => rows.every((row) => row.status === 'processed'),
    );
    const runs = handler.runs.filter((run) => run.dealId === 'ordered');
    expect(runs.map((run) => [run.eventId, run.ok])).toEqual([
      [first, false],
      [first, true],
      [second, true],
      [third, true],
    ]);
    // Another object was not held up behind the retry.
    const unrelatedRun = handler.runs.findIndex((run) => run.eventId === unrelated);
    const firstSuccess = handler.runs.findIndex((run) => run.eventId === first && run.ok);
    expect(unrelatedRun).toBeLessThan(firstSuccess);
  }, 30_000);

  it("holds a dead event's later changes of its object until a replay of it succeeds; a failed replay leaves it dead", async () => {
    // Dead after its 3 attempts, and the first replay fails too.
    handler.failures.set('held', 4);
    const first = await storeDealEvent('held', 'ONCRMDEALADD');
    const second = await storeDealEvent('held');
    const third = await storeDealEvent('held');
    const unrelated = await storeDealEvent('held-elsewhere');
    await eventually(
      () => Promise.all([event(first), event(unrelated)]),
      ([head, other]) => head.status === 'dead' && other.status === 'processed',
    );
    // Held: not attempted, no attempt spent.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (const id of [second, third]) {
      expect(await event(id)).toMatchObject({ status: 'pending', attempts: 0 });
      expect(handler.runs.some((run) => run.eventId === id)).toBe(false);
    }
    await expect(inbox.replay(second)).rejects.toMatchObject({ code: 'event_waiting_in_line' });
    expect(await event(second)).toMatchObject({ status: 'pending', attempts: 0 });

    expect((await inbox.replay(first)).status).toBe('dead');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await event(second)).toMatchObject({ status: 'pending', attempts: 0 });

    expect((await inbox.replay(first)).status).toBe('processed');
    await eventually(
      () => Promise.all([event(second), event(third)]),
      (rows) => rows.every((row) => row.status === 'processed' && row.attempts === 1),
    );
    expect(
      handler.runs.filter((run) => run.dealId === 'held').map((run) => [run.eventId, run.ok]),
    ).toEqual([
      [first, false],
      [first, false],
      [first, false],
      [first, false],
      [first, true],
      [second, true],
      [third, true],
    ]);
  }, 30_000);

  it("lets a dead event's object go on once the operator discards it, keeping it with the discard in its history", async () => {
    handler.failures.set('given-up', 3);
    const first = await storeDealEvent('given-up', 'ONCRMDEALADD');
    const second = await storeDealEvent('given-up');
    await eventually(
      () => event(first),
      (row) => row.status === 'dead',
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await event(second)).toMatchObject({ status: 'pending', attempts: 0 });
    await expect(inbox.discard(second)).rejects.toMatchObject({ code: 'event_not_discardable' });

    const discarded = await inbox.discard(first);
    expect(discarded).toMatchObject({ status: 'discarded', attempts: 3, nextAttemptAt: null });
    expect(discarded.lastError).toContain('downstream system unavailable');
    expect((await attempts(first)).at(-1)).toMatchObject({
      attempt: 3,
      trigger: 'discard',
      outcome: 'discarded',
      handlers: [],
      error: null,
    });
    await eventually(
      () => event(second),
      (row) => row.status === 'processed',
    );
    expect(handler.runs.filter((run) => run.eventId === first)).toHaveLength(3);
    await expect(inbox.discard(first)).rejects.toMatchObject({ code: 'event_not_discardable' });
    await expect(inbox.discard(second)).rejects.toMatchObject({ code: 'event_not_discardable' });
    await expect(inbox.discard('999999999')).rejects.toMatchObject({ code: 'event_not_found' });
    await expect(inbox.discard('abc')).rejects.toMatchObject({ code: 'invalid_event_id' });
  }, 30_000);

  it('never holds an event without an ordering key behind a dead one', async () => {
    const [dead, keyless]: { id: string }[] = await dataSource.query(
      `INSERT INTO stored_events (member_id, source, dedup_key, event_name, data, status, attempts,
         next_attempt_at)
       VALUES ($1, 'online', 'keyless-dead', 'ONCRMDEALUPDATE', '{"FIELDS":{"ID":"keyless"}}',
               'dead', 3, NULL),
              ($1, 'online', 'keyless-next', 'ONCRMDEALUPDATE', '{"FIELDS":{"ID":"keyless"}}',
               'pending', 0, now())
       RETURNING id`,
      [memberId],
    );
    await eventually(
      () => event(String(keyless.id)),
      (row) => row.status === 'processed',
    );
    expect((await event(String(dead.id))).status).toBe('dead');
  });

  it('marks an event no handler is registered for as unhandled: never retried, holding up nothing, run by a replay on a replica that has the handler', async () => {
    // This app handles no ONCRMDEALDELETE; the same deal's later update runs past it.
    const deleted = await storeDealEvent('unhandled-deal', 'ONCRMDEALDELETE');
    const later = await storeDealEvent('unhandled-deal');
    expect(await orderingKeyOf(deleted)).toBe(await orderingKeyOf(later));
    await eventually(
      () => Promise.all([event(deleted), event(later)]),
      ([first, second]) => first.status === 'unhandled' && second.status === 'processed',
    );
    expect(await attempts(deleted)).toEqual([
      expect.objectContaining({ outcome: 'unhandled', handlers: [], error: null }),
    ]);
    // Terminal: no automatic retry.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await event(deleted)).toMatchObject({ status: 'unhandled', attempts: 1 });
    // Replayed where there still is no handler, it stays unhandled.
    expect((await inbox.replay(deleted)).status).toBe('unhandled');

    // A replica of the next release, with the handler, on the same database.
    const newer = await bootReplica(DealDeleteHandlersModule);
    try {
      const replayed = await newer.get(InboxService).replay(deleted);
      expect(replayed.status).toBe('processed');
      expect(newer.get(DealDeleteHandler).eventIds).toEqual([deleted]);
      expect((await attempts(deleted)).at(-1)).toMatchObject({
        trigger: 'replay',
        outcome: 'processed',
        handlers: ['DealDeleteHandler.onDelete'],
      });
    } finally {
      await newer.close();
    }
  }, 30_000);

  it('refuses to replay unknown or malformed ids', async () => {
    await expect(inbox.replay('999999999')).rejects.toMatchObject({ code: 'event_not_found' });
    await expect(inbox.replay('abc')).rejects.toMatchObject({ code: 'invalid_event_id' });
    await expect(inbox.replay('-1')).rejects.toMatchObject({ code: 'invalid_event_id' });
  });

  it('refuses to replay an event whose handlers are running right now', async () => {
    const [row]: { id: string }[] = await dataSource.query(
      `INSERT INTO stored_events (member_id, source, dedup_key, event_name, status, attempts,
         claim_expires_at, next_attempt_at)
       VALUES ($1, 'online', 'claimed-now', 'ONCRMDEALUPDATE', 'pending', 1,
         now() + interval '1 minute', now())
       RETURNING id`,
      [memberId],
    );
    await expect(inbox.replay(String(row.id))).rejects.toMatchObject({ code: 'event_in_progress' });
  });

  it('ends as dead an event whose last allowed run was abandoned by a dying process', async () => {
    const [row]: { id: string }[] = await dataSource.query(
      `INSERT INTO stored_events (member_id, source, dedup_key, event_name, status, attempts,
         claim_expires_at, next_attempt_at)
       VALUES ($1, 'online', 'abandoned', 'ONCRMDEALUPDATE', 'pending', 3,
         now() - interval '1 second', now())
       RETURNING id`,
      [memberId],
    );
    const id = String(row.id);
    await eventually(
      () => event(id),
      (value) => value.status === 'dead',
      20_000,
    );
    expect((await attempts(id)).at(-1)).toMatchObject({ outcome: 'dead', attempt: 3 });
    expect(handler.runs.some((run) => run.eventId === id)).toBe(false);
  }, 30_000);
});
