import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { AppLogger } from '../../logging/app-logger';
import {
  Bitrix24Robot,
  type RobotAnswer,
  type RobotRun,
} from '../../robots/bitrix24-robot.decorator';

/**
 * Example robot: a user drops "Score the deal" into a deal pipeline; when a deal reaches that stage
 * Bitrix24 posts the run, this method computes a score and the deal waits for it
 * (USE_SUBSCRIPTION=Y). The return value is sent back once with bizproc.event.send. Like every
 * handler it must be idempotent: a retry or a replay runs it again.
 */
@Injectable()
export class DealScoreRobot {
  private readonly log: Logger;

  constructor(appLogger: AppLogger) {
    this.log = appLogger.child('example-handlers');
  }

  @Bitrix24Robot({
    code: 'example_deal_score',
    name: { en: 'Score the deal (example)' },
    useSubscription: true,
    properties: {
      amount: { name: 'Deal amount', type: 'double', required: true },
      priority: {
        name: 'Priority',
        type: 'select',
        options: { low: 'Low', high: 'High' },
        default: 'low',
      },
    },
    returnProperties: { score: { name: 'Score', type: 'int' } },
  })
  scoreDeal(run: RobotRun): RobotAnswer {
    const amount = Number(run.properties.amount ?? 0);
    const score =
      Math.min(100, Math.round(Math.log10(Math.max(amount, 1)) * 20)) +
      (run.properties.priority === 'high' ? 10 : 0);
    this.log.info(
      { memberId: run.memberId, documentId: run.documentId, score, attempt: run.attempt },
      'example robot scored a deal',
    );
    return { returnValues: { score }, logMessage: `Scored ${score}` };
  }
}
