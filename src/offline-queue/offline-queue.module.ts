import { Global, Module } from '@nestjs/common';
import { DrainLeaseService } from './drain-lease.service';
import { DrainLedger } from './drain-ledger.service';
import { DrainPausePoint } from './drain-pause-point';
import { DrainScheduler } from './drain-scheduler.service';
import { DrainService } from './drain.service';
import { DrainMetrics } from './drain.metrics';
import { FallbackPollService } from './fallback-poll.service';
import { FallbackPoller } from './fallback-poller';

/** Offline queue drains: lease, recovery, scheduler (webhook triggers) and the fallback poller. */
@Global()
@Module({
  providers: [
    DrainService,
    DrainScheduler,
    DrainLeaseService,
    DrainLedger,
    DrainPausePoint,
    DrainMetrics,
    FallbackPollService,
    FallbackPoller,
  ],
  exports: [DrainService, DrainScheduler],
})
export class OfflineQueueModule {}
