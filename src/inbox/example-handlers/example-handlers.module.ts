import { Module } from '@nestjs/common';
import { DealChangeLogHandler } from './deal-change-log.handler';

/**
 * The pattern for vendor handlers: a module whose providers have @OnBitrix24Event methods.
 * Enabled with EXAMPLE_HANDLERS=true; a vendor imports their own module in AppModule instead.
 */
@Module({ providers: [DealChangeLogHandler] })
export class ExampleHandlersModule {}
