import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import type { Logger } from 'pino';
import { AppLogger } from '../logging/app-logger';
import { RobotAnswers } from './robot-answers.service';

const SWEEP_MS = 5_000;
const SWEEP_BATCH = 50;

/**
 * Sends answers left unsent: a process that died between a run's commit and its answer, or a
 * transient refusal. Thin and never overlapping itself; claims keep replicas from doubling up.
 */
@Injectable()
export class RobotAnswerSweeper implements OnApplicationShutdown {
  private readonly log: Logger;
  private running = false;
  private stopped = false;

  constructor(
    private readonly answers: RobotAnswers,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('robots');
  }

  @Interval(SWEEP_MS)
  async sweep(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      for (const eventId of await this.answers.unsent(SWEEP_BATCH)) {
        if (this.stopped) break;
        await this.answers.send(eventId);
      }
    } catch (error) {
      this.log.warn({ err: error }, 'robot answer sweep failed; next sweep retries');
    } finally {
      this.running = false;
    }
  }

  onApplicationShutdown(): void {
    this.stopped = true;
  }
}
