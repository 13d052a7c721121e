import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { WebhooksModule } from '../webhooks/webhooks.module';
import { RobotAnswerPausePoint } from './robot-answer-pause-point';
import { RobotAnswerSweeper } from './robot-answer-sweeper';
import { RobotAnswerMetrics } from './robot-answers.metrics';
import { RobotAnswers } from './robot-answers.service';
import { RobotRegistry } from './robot-registry.service';
import { RobotSync } from './robot-sync.service';
import { RobotWebhookService } from './robot-webhook.service';
import { RobotsController } from './robots.controller';

/**
 * Robots (automation rules): declared with @Bitrix24Robot, registered on every portal, each run
 * stored once and handled from the inbox, its answer sent once with bizproc.event.send.
 */
@Module({
  imports: [DiscoveryModule, WebhooksModule],
  controllers: [RobotsController],
  providers: [
    RobotRegistry,
    RobotSync,
    RobotAnswers,
    RobotAnswerMetrics,
    RobotAnswerPausePoint,
    RobotWebhookService,
    RobotAnswerSweeper,
  ],
  exports: [RobotSync, RobotAnswers],
})
export class RobotsModule {}
