import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { EventAttemptEntity } from '../inbox/event-attempt.entity';
import { StoredEventEntity } from '../inbox/stored-event.entity';
import { HttpRequestMetrics } from '../metrics/http-request-metrics';
import { DrainBatchEntity } from '../offline-queue/drain-batch.entity';
import { OfflineQueueStateEntity } from '../offline-queue/offline-queue-state.entity';
import { PortalStatusChangeEntity } from '../portals/portal-status-change.entity';
import { PortalTokenEntity } from '../portals/portal-token.entity';
import { PortalEntity } from '../portals/portal.entity';
import { AdminAuthenticator } from './auth/admin-authenticator';
import { AdminEventsController } from './events/admin-events.controller';
import { AdminEventDiscard } from './events/admin-event-discard.service';
import { AdminEventReplay } from './events/admin-event-replay.service';
import { AdminEventsQueries } from './events/admin-events.queries';
import { AdminPortalsController } from './portals/admin-portals.controller';
import { AdminPortalActions } from './portals/admin-portal-actions.service';
import { AdminPortalsQueries } from './portals/admin-portals.queries';
import { AdminStatsController } from './stats/admin-stats.controller';
import { AdminStatsQueries } from './stats/admin-stats.queries';
import { RobotAnswerEntity } from '../robots/robot-answer.entity';

/**
 * The operator's REST API under /admin (see PRODUCT.md). Reads query the tables directly; actions
 * go through the services that own each rule. Also hosts the service-wide HTTP request metrics.
 */
@Module({
  imports: [
    TypeOrmModule.forFeature([
      PortalEntity,
      PortalTokenEntity,
      PortalStatusChangeEntity,
      StoredEventEntity,
      EventAttemptEntity,
      OfflineQueueStateEntity,
      DrainBatchEntity,
      RobotAnswerEntity,
    ]),
  ],
  controllers: [AdminPortalsController, AdminEventsController, AdminStatsController],
  providers: [
    AdminAuthenticator,
    AdminPortalsQueries,
    AdminPortalActions,
    AdminEventsQueries,
    AdminEventReplay,
    AdminEventDiscard,
    AdminStatsQueries,
    HttpRequestMetrics,
  ],
})
export class AdminModule {}
