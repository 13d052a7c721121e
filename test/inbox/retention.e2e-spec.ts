import { Client } from 'pg';
import { DrainService } from '../../src/offline-queue/drain.service';
import { RetentionService } from '../../src/retention/retention.service';
import {
  installBoundPortal,
  startDrainHarness,
  type DrainHarness,
} from '../offline-queue/drain-harness';
import type { TestApp } from '../support/test-app';

/**
 * Retention retires processed, discarded and unhandled events whose last attempt is older than
 * RETENTION_DAYS, and cleared drain batches past Bitrix24's process_id lifetime, and nothing that
 * the inbox, a robot's answer or the drain could still need.
 */
describe('retention', () => {
  let h: DrainHarness;
  let app: TestApp;
  let sql: Client;

  beforeAll(async () => {
    h = await startDrainHarness();
    sql = h.sql;
    app = await h.startApp({
      RETENTION_DAYS: '30',
      // Statuses are set by the tests; no handler run changes them behind their back.
      INBOX_CONCURRENCY: '0',
      // A failed drain pass is retried by the test, not by the scheduler in the background.
      DRAIN_RETRY_BASE_MS: '600000',
      DRAIN_RETRY_CAP_MS: '600000',
    });
    await sql.query(
      `INSERT INTO portals (member_id, domain, client_endpoint, status)
       VALUES ('retention-portal', 'r.bitrix24.test', 'https://r.bitrix24.test/rest/', 'active')`,
    );
  });

  afterAll(async () => {
    await h?.close();
  });

  const retention = (): RetentionService => app.app.get(RetentionService);

  /**
   * An event and its history: received `receivedDaysAgo`, its last attempt finished
   * `finishedDaysAgo` with `status` (processed_at then too for a processed one); with
   * `firstRunDaysAgo`, that last attempt is a replay of a first run then. An event's age is
   * counted from its last attempt, not from when it arrived.
   */
  async function storeEvent(row: {
    name: string;
    status: string;
    finishedDaysAgo: number;
    receivedDaysAgo?: number;
    firstRunDaysAgo?: number;
    source?: 'online' | 'offline';
    processId?: string | null;
    queueId?: number;
    claimedForSeconds?: number;
  }): Promise<string> {
    const receivedDaysAgo = row.receivedDaysAgo ?? row.finishedDaysAgo + 1;
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO stored_events (member_id, source, queue_id, process_id, event_name, data,
          status, received_at, processed_at, next_attempt_at, claim_expires_at)
       VALUES ('retention-portal', $1, $2, $3, $4, '{}'::jsonb, $5::varchar,
               now() - make_interval(days => $6),
               CASE WHEN $5::text = 'processed' THEN now() - make_interval(days => $7) END, NULL,
               now() + make_interval(secs => $8))
       RETURNING id`,
      [
        row.source ?? 'offline',
        row.queueId ?? null,
        row.processId ?? null,
        row.name,
        row.status,
        receivedDaysAgo,
        row.finishedDaysAgo,
        row.claimedForSeconds ?? null,
      ],
    );
    const outcome = row.status === 'pending' ? 'failed' : row.status;
    const attempts =
      row.firstRunDaysAgo === undefined
        ? [{ trigger: 'automatic', daysAgo: row.finishedDaysAgo }]
        : [
            { trigger: 'automatic', daysAgo: row.firstRunDaysAgo },
            { trigger: 'replay', daysAgo: row.finishedDaysAgo },
          ];
    for (const [index, attempt] of attempts.entries()) {
      await sql.query(
        `INSERT INTO event_attempts (event_id, attempt, trigger, outcome, started_at, finished_at)
         VALUES ($1, $2, $3, $4, now() - make_interval(days => $5), now() - make_interval(days => $5))`,
        [
          rows[0].id,
          index + 1,
          outcome === 'discarded' ? 'discard' : attempt.trigger,
          outcome,
          attempt.daysAgo,
        ],
      );
    }
    return rows[0].id;
  }

  /** A robot run processed `finishedDaysAgo`, whose answer to Bitrix24 is in `answer` state. */
  async function storeRobotRun(
    name: string,
    answer: 'pending' | 'sending' | 'sent',
    finishedDaysAgo: number,
  ): Promise<string> {
    const id = await storeEvent({ name, status: 'processed', finishedDaysAgo, source: 'online' });
    await sql.query(`INSERT INTO robot_answers (event_id, state) VALUES ($1, $2)`, [id, answer]);
    return id;
  }

  async function batch(processId: string, state: 'committed' | 'cleared', ageDays: number) {
    await sql.query(
      `INSERT INTO drain_batches (member_id, process_id, state, event_count, committed_at, cleared_at)
       VALUES ('retention-portal', $1, $2::varchar, 1, now() - make_interval(days => $3),
               CASE WHEN $2::text = 'cleared' THEN now() - make_interval(days => $3) END)`,
      [processId, state, ageDays],
    );
  }

  it('retires events finished long ago and old cleared batches, and keeps everything still needed', async () => {
    await batch('cleared-old', 'cleared', 40);
    await batch('cleared-recent', 'cleared', 31);
    await batch('uncleared', 'committed', 40);
    const retired = [
      await storeEvent({
        name: 'OLD_ONLINE',
        status: 'processed',
        finishedDaysAgo: 31,
        source: 'online',
      }),
      await storeEvent({
        name: 'OLD_CLEARED',
        status: 'processed',
        finishedDaysAgo: 31,
        processId: 'cleared-recent',
        queueId: 1,
      }),
      await storeEvent({
        name: 'OLD_AT_MOST_ONCE',
        status: 'processed',
        finishedDaysAgo: 45,
        queueId: 2,
      }),
      await storeEvent({
        name: 'OLD_DISCARDED',
        status: 'discarded',
        finishedDaysAgo: 31,
        receivedDaysAgo: 60,
        source: 'online',
      }),
      // A claim that lapsed long ago (its run died) protects nothing.
      await storeEvent({
        name: 'OLD_LAPSED_CLAIM',
        status: 'processed',
        finishedDaysAgo: 40,
        source: 'online',
        claimedForSeconds: -3600,
      }),
      // No handler ran it, and none will: the operator had RETENTION_DAYS to replay it.
      await storeEvent({
        name: 'OLD_UNHANDLED',
        status: 'unhandled',
        finishedDaysAgo: 31,
        receivedDaysAgo: 31,
        source: 'online',
      }),
      // Its answer is sent: the answer goes with it.
      await storeRobotRun('ROBOT:sent', 'sent', 40),
    ];
    const kept = [
      await storeEvent({
        name: 'RECENT',
        status: 'processed',
        finishedDaysAgo: 29,
        source: 'online',
      }),
      // Received long ago, processed (or discarded) lately: its age counts from then.
      await storeEvent({
        name: 'OLD_BUT_PROCESSED_LATELY',
        status: 'processed',
        finishedDaysAgo: 5,
        receivedDaysAgo: 90,
        source: 'online',
      }),
      await storeEvent({
        name: 'OLD_BUT_DISCARDED_LATELY',
        status: 'discarded',
        finishedDaysAgo: 2,
        receivedDaysAgo: 90,
        source: 'online',
      }),
      await storeEvent({ name: 'OLD_DEAD', status: 'dead', finishedDaysAgo: 90, source: 'online' }),
      await storeEvent({
        name: 'OLD_FAILED',
        status: 'failed',
        finishedDaysAgo: 90,
        source: 'online',
      }),
      await storeEvent({
        name: 'OLD_PENDING',
        status: 'pending',
        finishedDaysAgo: 90,
        source: 'online',
      }),
      await storeEvent({
        name: 'RECENT_UNHANDLED',
        status: 'unhandled',
        finishedDaysAgo: 29,
        receivedDaysAgo: 29,
        source: 'online',
      }),
      // Replayed lately, still without a handler: the operator's time to deploy one starts anew.
      await storeEvent({
        name: 'OLD_UNHANDLED_REPLAYED_LATELY',
        status: 'unhandled',
        finishedDaysAgo: 3,
        firstRunDaysAgo: 90,
        receivedDaysAgo: 90,
        source: 'online',
      }),
      // Its batch is not cleared: a resume would read the row again, and only this row dedups it.
      await storeEvent({
        name: 'OLD_UNCLEARED',
        status: 'processed',
        finishedDaysAgo: 40,
        processId: 'uncleared',
        queueId: 3,
      }),
      // A replay of it is running right now (a processed event keeps its status while it runs).
      await storeEvent({
        name: 'OLD_BEING_REPLAYED',
        status: 'processed',
        finishedDaysAgo: 40,
        source: 'online',
        claimedForSeconds: 30,
      }),
    ];
    // Bitrix24 has not had their answers yet: a robot's run is kept until it has.
    const unsentRobotRuns = [
      await storeRobotRun('ROBOT:pending', 'pending', 40),
      await storeRobotRun('ROBOT:sending', 'sending', 40),
    ];
    kept.push(...unsentRobotRuns);
    // Locked by someone else (the inbox, an operator's replay): retention skips it, never waits.
    const lockedOld = await storeEvent({
      name: 'OLD_LOCKED',
      status: 'processed',
      finishedDaysAgo: 40,
      source: 'online',
    });
    const holder = new Client({ connectionString: h.database.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM stored_events WHERE id = $1 FOR UPDATE', [lockedOld]);

      const report = await retention().runOnce();

      expect(report).toEqual({
        ran: true,
        storedEvents: retired.length,
        drainBatches: 1,
        longestStatementMs: expect.any(Number) as number,
      });
      const { rows: left } = await sql.query<{ id: string }>(
        `SELECT id FROM stored_events WHERE member_id = 'retention-portal' ORDER BY id`,
      );
      expect(left.map((row) => row.id)).toEqual([...kept, lockedOld]);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const { rows: attempts } = await sql.query<{ event_id: string }>(
      'SELECT event_id FROM event_attempts WHERE event_id = ANY($1)',
      [retired],
    );
    expect(attempts).toEqual([]);
    const { rows: answers } = await sql.query<{ event_id: string }>(
      'SELECT event_id::text FROM robot_answers ORDER BY event_id',
    );
    expect(answers).toEqual(unsentRobotRuns.map((id) => ({ event_id: id })));
    const { rows: batches } = await sql.query<{ process_id: string }>(
      `SELECT process_id FROM drain_batches WHERE member_id = 'retention-portal' ORDER BY process_id`,
    );
    expect(batches.map((row) => row.process_id)).toEqual(['cleared-recent', 'uncleared']);

    // The row that was locked goes once it is free; then nothing is left to do.
    expect(await retention().runOnce()).toMatchObject({ storedEvents: 1, drainBatches: 0 });
    expect(await retention().runOnce()).toEqual({
      ran: true,
      storedEvents: 0,
      drainBatches: 0,
      longestStatementMs: expect.any(Number) as number,
    });
  });

  it('runs on one replica at a time', async () => {
    const other = new Client({ connectionString: h.database.url });
    await other.connect();
    try {
      await other.query(`SELECT pg_advisory_lock(hashtext('retention'))`);
      expect(await retention().runOnce()).toEqual({
        ran: false,
        storedEvents: 0,
        drainBatches: 0,
        longestStatementMs: 0,
      });
    } finally {
      await other.end();
    }
    expect((await retention().runOnce()).ran).toBe(true);
  });

  it('keeps an old event while its batch is uncleared, so the resumed batch stores it once, and retires it after the clear', async () => {
    const portal = await installBoundPortal(h, app);
    const drain = app.app.get(DrainService);
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: 3,
      event: 'ONCRMDEALUPDATE',
      notify: false,
    });
    // The rows are committed, Bitrix24 refuses the clear: the batch stays reserved there.
    await h.emulator.control.setFaults(portal.memberId, {
      errorRate: 1,
      methods: ['event.offline.clear'],
    });
    expect(await drain.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'failed',
      events: 3,
    });
    const stored = async (): Promise<string[]> =>
      (
        await sql.query<{ id: string }>(
          `SELECT id FROM stored_events WHERE member_id = $1 ORDER BY id`,
          [portal.memberId],
        )
      ).rows.map((row) => row.id);
    const first = await stored();
    expect(first).toHaveLength(3);
    // Processed 40 days ago (the batch is as old): past RETENTION_DAYS, but its batch is uncleared.
    await sql.query(
      `UPDATE stored_events SET status = 'processed', next_attempt_at = NULL,
              received_at = now() - interval '41 days', processed_at = now() - interval '40 days'
        WHERE member_id = $1`,
      [portal.memberId],
    );
    await sql.query(
      `UPDATE drain_batches SET committed_at = now() - interval '41 days' WHERE member_id = $1`,
      [portal.memberId],
    );

    expect(await retention().runOnce()).toMatchObject({ storedEvents: 0 });
    expect(await stored()).toEqual(first);

    // Bitrix24 clears again: the drain resumes the batch, gets the same rows, stores none anew.
    await h.emulator.control.clearFaults(portal.memberId);
    expect(await drain.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      recoveredBatches: 1,
    });
    expect(await stored()).toEqual(first);
    const queue = (await h.emulator.control.stats(portal.memberId)).queue;
    expect(queue).toMatchObject({ total: 0, reserved: 0 });

    // Cleared now: Bitrix24 holds none of its rows, and the events go.
    expect(await retention().runOnce()).toMatchObject({ storedEvents: 3, drainBatches: 0 });
    expect(await stored()).toEqual([]);
    // The batch's ledger row stays for Bitrix24's process_id lifetime after its clear.
    const { rows: ledger } = await sql.query<{ state: string }>(
      `SELECT state FROM drain_batches WHERE member_id = $1`,
      [portal.memberId],
    );
    expect(ledger).toEqual([{ state: 'cleared' }]);
    // Nothing comes back: the next drain finds an empty queue and stores nothing.
    expect(await drain.drainPortal(portal.memberId)).toMatchObject({
      outcome: 'drained',
      events: 0,
    });
    expect(await stored()).toEqual([]);
  });
});
