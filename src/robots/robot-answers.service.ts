import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import { Bitrix24ApiError } from '../bitrix24/bitrix24-api.error';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { Bitrix24OutcomeUnknownError } from '../bitrix24/portal-client';
import type { StoredEventEntity } from '../inbox/stored-event.entity';
import { AppLogger } from '../logging/app-logger';
import type { RobotAnswer } from './bitrix24-robot.decorator';
import { RobotAnswerPausePoint } from './robot-answer-pause-point';
import type { RobotAnswerState } from './robot-answer.entity';
import { RobotAnswerMetrics } from './robot-answers.metrics';
import type { StoredRobotForm } from './robot-form';

/** A sender holds an answer this long; one that died mid-send is taken over afterwards. */
const CLAIM_SECONDS = 30;
/** Transient failures are retried by the sweep this many times, then the answer is failed. */
export const MAX_ANSWER_ATTEMPTS = 10;
const MAX_ERROR_LENGTH = 2000;

interface ClaimedAnswer {
  member_id: string;
  event_token: string;
  return_values: Record<string, unknown> | null;
  log_message: string | null;
  late: boolean;
  attempts: number;
  delivery_uncertain: boolean;
}

/**
 * Bitrix24 refuses a second answer for a token (the emulator: ACCESS_DENIED; the docs name no
 * code). After a send that may have arrived, such a refusal means the run was answered.
 */
function refusedAsAnswered(error: unknown): error is Bitrix24ApiError {
  return error instanceof Bitrix24ApiError && error.category === 'caller';
}

function answerOf(result: unknown): RobotAnswer {
  if (result === null || typeof result !== 'object') return {};
  const { returnValues, logMessage } = result as RobotAnswer;
  return {
    ...(returnValues !== undefined ? { returnValues } : {}),
    ...(typeof logMessage === 'string' ? { logMessage } : {}),
  };
}

/**
 * The answer to each robot run: kept with the run's successful record (once per run, whatever
 * retries and replays follow), then sent with bizproc.event.send by whoever claims it first.
 */
@Injectable()
export class RobotAnswers {
  private readonly log: Logger;

  constructor(
    private readonly dataSource: DataSource,
    private readonly bitrix24: Bitrix24Client,
    private readonly metrics: RobotAnswerMetrics,
    private readonly pausePoint: RobotAnswerPausePoint,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('robots');
  }

  /**
   * Inside the transaction recording the run: the answer, only when Bitrix24 waits for one
   * (use_subscription=Y). A run already answered (a replay) keeps its first answer.
   */
  async record(manager: EntityManager, event: StoredEventEntity, result: unknown): Promise<void> {
    const form = event.data as StoredRobotForm;
    if (form.use_subscription !== 'Y') return;
    const answer = answerOf(result);
    const firedAt = event.bitrixTimestamp ?? event.receivedAt;
    const deadline =
      form.timeout_duration > 0 ? new Date(firedAt.getTime() + form.timeout_duration * 1000) : null;
    await manager.query(
      `INSERT INTO robot_answers (event_id, state, return_values, log_message, deadline_at)
       VALUES ($1, 'pending', $2::jsonb, $3, $4)
       ON CONFLICT (event_id) DO NOTHING`,
      [event.id, JSON.stringify(answer.returnValues ?? {}), answer.logMessage ?? null, deadline],
    );
  }

  /** After the run's commit: send now, without holding up the worker. */
  sendSoon(eventId: string): void {
    void this.send(eventId).catch((error: unknown) =>
      this.log.error({ err: error, eventId }, 'robot answer could not be sent; the sweep retries'),
    );
  }

  /**
   * Claims the answer (pending, or a sending whose sender died) with a conditional UPDATE and
   * sends it; null when someone else has it or it is settled. Past the robot's deadline it is
   * recorded as too late and not sent. Taking over a dead sender's claim marks the delivery
   * uncertain: that sender may have been answered by Bitrix24 before it died.
   */
  async send(eventId: string): Promise<RobotAnswerState | null> {
    await this.pausePoint.reached('before-send', eventId);
    const [claimed]: [ClaimedAnswer[], number] = await this.dataSource.query(
      `UPDATE robot_answers a
       SET state = 'sending', attempts = a.attempts + 1,
           claimed_until = now() + make_interval(secs => $2),
           delivery_uncertain = a.delivery_uncertain OR a.state = 'sending'
       FROM stored_events e
       WHERE a.event_id = $1 AND e.id = a.event_id
         AND (a.state = 'pending' OR (a.state = 'sending' AND a.claimed_until < now()))
       RETURNING e.member_id, e.data->>'event_token' AS event_token, a.return_values,
                 a.log_message, (a.deadline_at IS NOT NULL AND a.deadline_at < now()) AS late,
                 a.attempts, a.delivery_uncertain`,
      [eventId, CLAIM_SECONDS],
    );
    const answer = claimed[0];
    if (answer === undefined) return null;
    const { member_id: memberId, attempts } = answer;
    if (answer.late) {
      await this.settle(
        eventId,
        attempts,
        'too_late',
        'the robot stopped waiting before the answer',
      );
      this.metrics.counted('too_late');
      this.log.warn({ memberId, eventId }, 'robot answer too late: not sent');
      return 'too_late';
    }
    try {
      await this.bitrix24.forPortal(memberId).call('bizproc.event.send', {
        EVENT_TOKEN: answer.event_token,
        RETURN_VALUES: answer.return_values ?? {},
        ...(answer.log_message === null ? {} : { LOG_MESSAGE: answer.log_message }),
      });
    } catch (error) {
      const reason = (error instanceof Error ? error.message : String(error)).slice(
        0,
        MAX_ERROR_LENGTH,
      );
      if (answer.delivery_uncertain && refusedAsAnswered(error)) {
        // Not a failure to retry: Bitrix24 holds the answer an earlier send gave it.
        await this.settle(eventId, attempts, 'sent', `already answered: ${reason}`);
        this.metrics.counted('already_answered');
        this.log.info(
          { memberId, eventId, attempts, error: error.bitrixCode },
          'robot answer resend refused: taken as already answered',
        );
        return 'sent';
      }
      // A lost answer or a 5xx: Bitrix24 may have taken it (the client does not resend a send).
      const uncertain = error instanceof Bitrix24OutcomeUnknownError;
      const retry =
        attempts < MAX_ANSWER_ATTEMPTS &&
        !(error instanceof Bitrix24ApiError && error.category === 'caller');
      await this.settle(eventId, attempts, retry ? 'pending' : 'failed', reason, uncertain);
      this.metrics.counted(retry ? 'retry' : 'failed');
      this.log.warn({ memberId, eventId, attempts, retry, error: reason }, 'robot answer refused');
      return retry ? 'pending' : 'failed';
    }
    await this.pausePoint.reached('after-send', eventId);
    await this.settle(eventId, attempts, 'sent', null);
    this.metrics.counted('sent');
    this.log.info({ memberId, eventId }, 'robot answered');
    return 'sent';
  }

  /** Answers left unsent (a crash after the run's commit, a transient refusal): oldest first. */
  async unsent(limit: number): Promise<string[]> {
    const rows: { event_id: string }[] = await this.dataSource.query(
      `SELECT event_id::text AS event_id FROM robot_answers
       WHERE state = 'pending' OR (state = 'sending' AND claimed_until < now())
       ORDER BY created_at LIMIT $1`,
      [limit],
    );
    return rows.map((row) => row.event_id);
  }

  /**
   * The claim's attempt number fences the write: a sender whose claim was taken over writes
   * nothing. `uncertain`: this send failed in a way that may still have delivered it.
   */
  private async settle(
    eventId: string,
    attempts: number,
    state: RobotAnswerState,
    error: string | null,
    uncertain = false,
  ): Promise<void> {
    await this.dataSource.query(
      `UPDATE robot_answers
       SET state = $3::varchar, error = $4, claimed_until = NULL,
           sent_at = CASE WHEN $3::varchar = 'sent' THEN now() ELSE sent_at END,
           delivery_uncertain = delivery_uncertain OR $5
       WHERE event_id = $1 AND attempts = $2 AND state = 'sending'`,
      [eventId, attempts, state, error, uncertain],
    );
  }
}
