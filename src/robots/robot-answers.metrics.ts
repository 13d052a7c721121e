import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsRegistry } from '../metrics/metrics.registry';

/** Scrapes read the unsent answers from Postgres at most this often (every replica reports the same table). */
const UNSENT_CACHE_MS = 5000;

/** What one send attempt of an answer came to. */
export type RobotAnswerOutcome = 'sent' | 'already_answered' | 'too_late' | 'failed' | 'retry';

interface Unsent {
  byState: Record<'pending' | 'sending', number>;
  oldestAgeSeconds: number;
}

/**
 * Robot answer metrics: this process's send attempts by outcome, and the answers still unsent
 * (read from the shared table, by its partial index, when Prometheus scrapes).
 */
@Injectable()
export class RobotAnswerMetrics {
  readonly attempts: Counter<'outcome'>;
  private unsent: { value: Promise<Unsent>; readAt: number } | undefined;

  constructor(
    metrics: MetricsRegistry,
    private readonly dataSource: DataSource,
  ) {
    this.attempts = metrics.counter(
      'robot_answer_attempts_total',
      'Robot answer send attempts (bizproc.event.send), by outcome: sent, already_answered ' +
        '(a resend refused after an earlier send may have arrived), too_late (not sent: the robot ' +
        'stopped waiting), failed (refused, given up), retry (refused for now, the sweep retries)',
      ['outcome'],
    );
    const read = (): Promise<Unsent> => this.readUnsent();
    metrics.gauge(
      'robot_answers_unsent',
      'Robot answers recorded but not yet sent, by state (pending, sending)',
      ['state'],
      async function () {
        const { byState } = await read();
        for (const [state, count] of Object.entries(byState)) this.set({ state }, count);
      },
    );
    metrics.gauge(
      'robot_answers_oldest_unsent_age_seconds',
      'Age of the oldest robot answer recorded but not yet sent',
      [],
      async function () {
        this.set((await read()).oldestAgeSeconds);
      },
    );
  }

  counted(outcome: RobotAnswerOutcome): void {
    this.attempts.inc({ outcome });
  }

  private readUnsent(): Promise<Unsent> {
    if (this.unsent && Date.now() - this.unsent.readAt < UNSENT_CACHE_MS) return this.unsent.value;
    const value = this.queryUnsent();
    this.unsent = { value, readAt: Date.now() };
    value.catch(() => (this.unsent = undefined));
    return value;
  }

  private async queryUnsent(): Promise<Unsent> {
    const rows: { state: 'pending' | 'sending'; count: number; age: number | null }[] =
      await this.dataSource.query(
        `SELECT state, count(*)::int AS count,
                EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS age
         FROM robot_answers WHERE state IN ('pending','sending') GROUP BY state`,
      );
    const byState = { pending: 0, sending: 0 };
    let oldestAgeSeconds = 0;
    for (const row of rows) {
      byState[row.state] = row.count;
      oldestAgeSeconds = Math.max(oldestAgeSeconds, row.age ?? 0);
    }
    return { byState, oldestAgeSeconds };
  }
}
