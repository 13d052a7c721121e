import { Module } from '@nestjs/common';
import { DealChangeLogHandler } from './deal-change-log.handler';
import { DealScoreRobot } from './deal-score.robot';

/**
 * The pattern for vendor handlers: a module whose providers have @OnBitrix24Event (and
 * @Bitrix24Robot) methods.
 * Enabled with EXAMPLE_HANDLERS=true; a vendor imports their own module in AppModule instead.
 */
@Module({ providers: [DealChangeLogHandler, DealScoreRobot] })
export class ExampleHandlersModule {}
