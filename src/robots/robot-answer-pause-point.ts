import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';

export type RobotAnswerPoint = 'before-send' | 'after-send';

/**
 * Test-only fault hook, the drain's pattern (DrainPausePoint) for robot answers
 * (ROBOT_ANSWER_TEST_PAUSE_AT=<point>, refused in production): every sender stops at that point
 * and logs it, so a crash test can SIGKILL the process there instead of racing a timer.
 * `before-send`: the run committed, its answer not sent; `after-send`: Bitrix24 took the answer,
 * it is not yet recorded as sent. The pause ends only when the application stops.
 */
@Injectable()
export class RobotAnswerPausePoint implements OnModuleDestroy {
  private readonly target: RobotAnswerPoint | undefined;
  private readonly log: Logger;
  private release: (() => void) | undefined;
  private readonly released: Promise<void>;

  constructor(config: AppConfig, appLogger: AppLogger) {
    this.log = appLogger.child('robots');
    this.target = config.robots.answerTestPauseAt;
    this.released = new Promise((resolve) => (this.release = resolve));
  }

  async reached(point: RobotAnswerPoint, eventId: string): Promise<void> {
    if (this.target !== point) return;
    this.log.warn({ eventId, point }, 'robot answer paused at test fault point');
    await this.released;
  }

  onModuleDestroy(): void {
    this.release?.();
  }
}
