import { INestApplication, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { loadConfig } from '../../src/config/app-config';
import { EventProcessor } from '../../src/inbox/event-processor.service';
import type { InboxEvent } from '../../src/inbox/inbox-event';
import { InboxService } from '../../src/inbox/inbox.service';
import { OnBitrix24Event } from '../../src/inbox/on-bitrix24-event.decorator';
import { StoredEventEntity } from '../../src/inbox/stored-event.entity';
import { AppLogger, createPinoLogger } from '../../src/logging/app-logger';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_ENCRYPTION_KEY } from '../support/test-app';
import { eventually } from '../support/eventually';

/**
 * A handler that, for deal "slow", outlives the handler timeout and ignores its abort signal for
 * a while: the log shows whether anything of that deal started before it really ended.
 */
@Injectable()
class SlowDealHandler {
  readonly log: string[] = [];
  readonly abortedAtEnd: boolean[] = [];
  slowRunMs = 2500;

  @OnBitrix24Event('ONCRMDEALUPDATE')
  async onDeal(event: InboxEvent): Promise<void> {
    const dealId = String((event.data as { FIELDS: { ID: string } }).FIELDS.ID);
    const tag = `${dealId}#${event.id}/${event.attempt}`;
    this.log.push(`start ${tag}`);
    if (dealId === 'slow' && event.attempt === 1) {
      // Keeps working past the timeout, as a handler stuck in a slow call would.
      await new Promise((resolve) => setTimeout(resolve, this.slowRunMs));
      this.abortedAtEnd.push(event.signal.aborted);
    }
    this.log.push(`end ${tag}`);
  }
}

@Module({ providers: [SlowDealHandler] })
class SlowHandlersModule {}

describe('the inbox: one run of an object at a time', () => {
  let database: TestDatabase;
  let app: INestApplication;
  let inbox: InboxService;
  let dataSource: DataSource;
  let handler: SlowDealHandler;
  let sequence = 0;
  const memberId = 'inbox-runs-portal';

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      BITRIX24_CLIENT_ID: TEST_CLIENT_ID,
      BITRIX24_CLIENT_SECRET: TEST_CLIENT_SECRET,
      TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      POLL_INTERVAL_SECONDS: '0',
      INBOX_MAX_ATTEMPTS: '3',
      INBOX_RETRY_BASE_SECONDS: '1',
      INBOX_CONCURRENCY: '4',
      INBOX_HANDLER_TIMEOUT_SECONDS: '1',
    });
    const logger = new AppLogger(createPinoLogger('silent'));
    @Module({
      imports: [
        AppModule.forRoot({ config, databaseUrl: database.url, logger }),
        SlowHandlersModule,
      ],
    })
    class InboxRunsTestModule {}
    app = await NestFactory.create(InboxRunsTestModule, new FastifyAdapter(), {
      logger,
      abortOnError: false,
    });
    await app.init();
    inbox = app.get(InboxService);
    dataSource = app.get(DataSource);
    handler = app.get(SlowDealHandler);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  async function storeDealEvent(dealId: string): Promise<string> {
    sequence += 1;
    const dedupKey = `runs-${sequence}`;
    await inbox.storeOnlineEvent({
      memberId,
      eventName: 'ONCRMDEALUPDATE',
      data: { FIELDS: { ID: dealId } },
      bitrixTimestamp: new Date(),
      dedupKey,
    });
    const [row]: { id: string }[] = await dataSource.query(
      `SELECT id FROM stored_events WHERE member_id = $1 AND dedup_key = $2`,
      [memberId, dedupKey],
    );
    return String(row.id);
  }

  async function statusOf(id: string): Promise<string> {
    const [row]: { status: string }[] = await dataSource.query(
      `SELECT status FROM stored_events WHERE id = $1`,
      [id],
    );
    return row.status;
  }

  it('aborts a timed-out handler and starts nothing of its object until it really ended', async () => {
    const a = await storeDealEvent('slow');
    const b = await storeDealEvent('slow');
    await eventually(
      () => Promise.all([statusOf(a), statusOf(b)]),
      ([statusA, statusB]) => statusA === 'processed' && statusB === 'processed',
      30_000,
    );
    const log = handler.log.filter(
      (line) => line.startsWith('start slow') || line.startsWith('end slow'),
    );
    // A's first run ended before anything else of the deal started (its retry, or B).
    expect(log.slice(0, 2)).toEqual([`start slow#${a}/1`, `end slow#${a}/1`]);
    expect(log.indexOf(`start slow#${b}/1`)).toBeGreaterThan(log.indexOf(`start slow#${a}/2`));
    // The handler was told to stop when its time ran out.
    expect(handler.abortedAtEnd).toEqual([true, true]);
  }, 40_000);

  it('fences every write of a run whose claim was taken over', async () => {
    const id = await storeDealEvent('fenced');
    await eventually(
      () => statusOf(id),
      (status) => status === 'processed',
    );
    // Another run claims the event (as after a lapsed claim); the first run, paused so far,
    // then tries to record itself with what it was claimed with.
    const repository = dataSource.getRepository(StoredEventEntity);
    await dataSource.query(
      `UPDATE stored_events SET status = 'pending', attempts = attempts + 1,
         run_token = nextval('stored_event_run_token_seq'),
         claim_expires_at = now() + interval '1 minute' WHERE id = $1`,
      [id],
    );
    const paused = await repository.findOneByOrFail({ id });
    await dataSource.query(
      `UPDATE stored_events SET run_token = nextval('stored_event_run_token_seq') WHERE id = $1`,
      [id],
    );
    const attemptsBefore: { count: string }[] = await dataSource.query(
      `SELECT count(*) FROM event_attempts WHERE event_id = $1`,
      [id],
    );
    await app.get(EventProcessor).process(paused, 'automatic');
    expect(await statusOf(id)).toBe('pending');
    const attemptsAfter: { count: string }[] = await dataSource.query(
      `SELECT count(*) FROM event_attempts WHERE event_id = $1`,
      [id],
    );
    expect(attemptsAfter[0].count).toBe(attemptsBefore[0].count);
  }, 30_000);

  it('refuses to replay an event ahead of an unfinished earlier event of its object, or alongside a running one', async () => {
    const [a, b]: { id: string }[] = await dataSource.query(
      `INSERT INTO stored_events (member_id, source, dedup_key, event_name, ordering_key, status,
         attempts, next_attempt_at)
       VALUES ($1, 'online', 'line-a', 'ONCRMDEALUPDATE', 'CRMDEAL:line', 'failed', 1,
                now() + interval '1 hour'),
              ($1, 'online', 'line-b', 'ONCRMDEALUPDATE', 'CRMDEAL:line', 'pending', 0,
                now() + interval '1 hour')
       RETURNING id`,
      [memberId],
    );
    await expect(inbox.replay(String(b.id))).rejects.toMatchObject({
      code: 'event_waiting_in_line',
    });
    expect(await statusOf(String(b.id))).toBe('pending');
    // A later event of the object running right now: an earlier one's replay waits for it too.
    await dataSource.query(
      `UPDATE stored_events SET claim_expires_at = now() + interval '1 minute' WHERE id = $1`,
      [b.id],
    );
    await dataSource.query(`UPDATE stored_events SET status = 'dead' WHERE id = $1`, [a.id]);
    await expect(inbox.replay(String(a.id))).rejects.toMatchObject({
      code: 'event_waiting_in_line',
    });
    expect(await statusOf(String(a.id))).toBe('dead');
  });
});
