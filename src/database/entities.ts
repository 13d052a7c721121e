import { ExampleDealEntity } from '../examples/example-deal.entity';
import { EventAttemptEntity } from '../inbox/event-attempt.entity';
import { StoredEventEntity } from '../inbox/stored-event.entity';
import { DrainBatchEntity } from '../offline-queue/drain-batch.entity';
import { OfflineQueueStateEntity } from '../offline-queue/offline-queue-state.entity';
import { PortalStatusChangeEntity } from '../portals/portal-status-change.entity';
import { PortalTokenEntity } from '../portals/portal-token.entity';
import { PortalEntity } from '../portals/portal.entity';
import { InstalledRobotEntity } from '../robots/installed-robot.entity';
import { RobotAnswerEntity } from '../robots/robot-answer.entity';

/** Every entity of the schema; shared by the app and the migration CLI. */
export const ENTITIES = [
  PortalEntity,
  PortalStatusChangeEntity,
  PortalTokenEntity,
  StoredEventEntity,
  EventAttemptEntity,
  DrainBatchEntity,
  OfflineQueueStateEntity,
  ExampleDealEntity,
  InstalledRobotEntity,
  RobotAnswerEntity,
];
