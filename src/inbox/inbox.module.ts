import { DynamicModule, Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { AppConfig } from '../config/app-config';
import { EventProcessor } from './event-processor.service';
import { ExampleHandlersModule } from './example-handlers/example-handlers.module';
import { HandlerRegistry } from './handler-registry.service';
import { InboxWakeup } from './inbox-wakeup.service';
import { InboxWorker } from './inbox-worker.service';
import { InboxMetrics } from './inbox.metrics';
import { InboxService } from './inbox.service';

/**
 * Stored events and their handlers. Vendor handler modules are imported by the app; their
 * @OnBitrix24Event methods are found at start. EXAMPLE_HANDLERS=true adds the example module.
 */
@Global()
@Module({})
export class InboxModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: InboxModule,
      imports: [DiscoveryModule, ...(config.inbox.exampleHandlers ? [ExampleHandlersModule] : [])],
      providers: [
        InboxService,
        InboxWorker,
        InboxWakeup,
        EventProcessor,
        HandlerRegistry,
        InboxMetrics,
      ],
      exports: [InboxService, HandlerRegistry],
    };
  }
}
