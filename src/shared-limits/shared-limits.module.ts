import { Global, Module } from '@nestjs/common';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { SharedLimits } from './shared-limits';

/** Per-address limits that hold across replicas (admin authentication, installations). */
@Global()
@Module({
  providers: [
    {
      provide: SharedLimits,
      useFactory: (dataSource: DataSource, appLogger: AppLogger, metrics: MetricsRegistry) =>
        new SharedLimits(
          new Pool({
            connectionString: (dataSource.options as { url?: string }).url,
            max: 4,
            connectionTimeoutMillis: 1_000,
            query_timeout: 1_000,
            idleTimeoutMillis: 30_000,
            keepAlive: true,
          }),
          appLogger.child('shared-limits'),
          metrics.counter(
            'shared_limit_store_failures_total',
            'Shared-limit queries the database did not answer (counted in memory instead)',
          ),
        ),
      inject: [DataSource, AppLogger, MetricsRegistry],
    },
  ],
  exports: [SharedLimits],
})
export class SharedLimitsModule {}
