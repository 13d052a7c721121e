import { DynamicModule, Module, type Type } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AdminModule } from './admin/admin.module';
import { AppFrameModule } from './app-frame/app-frame.module';
import { Bitrix24Module } from './bitrix24/bitrix24.module';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { dataSourceOptions } from './database/data-source-options';
import { HealthModule } from './health/health.module';
import { ExampleDealCopyModule } from './examples/example-deal-copy.module';
import { InboxModule } from './inbox/inbox.module';
import { AppLogger } from './logging/app-logger';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { OfflineQueueModule } from './offline-queue/offline-queue.module';
import { PortalsModule } from './portals/portals.module';
import { RetentionModule } from './retention/retention.module';
import { RobotsModule } from './robots/robots.module';
import { SharedLimitsModule } from './shared-limits/shared-limits.module';
import { WebhooksModule } from './webhooks/webhooks.module';

export interface AppModuleOptions {
  config: AppConfig;
  /** The database this instance uses (DATABASE_URL, or the embedded server's URL). */
  databaseUrl: string;
  logger: AppLogger;
  /** The vendor's handler modules (@OnBitrix24Event, @Bitrix24Robot providers). */
  vendorModules?: (Type | DynamicModule)[];
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(options.config),
        LoggingModule.forRoot(options.logger),
        TypeOrmModule.forRoot({
          ...dataSourceOptions(options.databaseUrl),
          // Keep retrying at start: a replica may come up before its database.
          retryAttempts: 10,
          retryDelay: 1000,
        }),
        ScheduleModule.forRoot(),
        MetricsModule,
        HealthModule,
        SharedLimitsModule,
        Bitrix24Module,
        PortalsModule,
        AdminModule,
        InboxModule.forRoot(options.config),
        OfflineQueueModule,
        WebhooksModule,
        RetentionModule,
        ...(options.config.inbox.exampleHandlers ? [ExampleDealCopyModule] : []),
        AppFrameModule,
        RobotsModule,
        ...(options.vendorModules ?? []),
      ],
    };
  }
}
