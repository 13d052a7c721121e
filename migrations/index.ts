import type { MigrationInterface } from 'typeorm';
import { InitialSchema1795704041176 } from './1795704041176-InitialSchema';
import { DrainRecoveryAndInboxClaims1795704600000 } from './1795704600000-DrainRecoveryAndInboxClaims';
import { PortalRateBuckets1796300000000 } from './1796300000000-PortalRateBuckets';
import { ExampleDeals1796300000001 } from './1796300000001-ExampleDeals';
import { PortalLicenseFamily1796300000002 } from './1796300000002-PortalLicenseFamily';
import { PortalUserTokens1796400000000 } from './1796400000000-PortalUserTokens';
import { DrainRetryBackoff1796200000000 } from './1796200000000-DrainRetryBackoff';
import { InboxRunFencing1796100000000 } from './1796100000000-InboxRunFencing';
import { AppLifecycle1796600000000 } from './1796600000000-AppLifecycle';
import { PortalPlacements1796900000000 } from './1796900000000-PortalPlacements';
import { Robots1797000000000 } from './1797000000000-Robots';
import { InboxLineHeads1797400000000 } from './1797400000000-InboxLineHeads';
import { RobotAnswersSeenByOperators1797200000000 } from './1797200000000-RobotAnswersSeenByOperators';
import { PortalSearch1797100000000 } from './1797100000000-PortalSearch';
import { InboxDeadHoldsTheLine1796800000000 } from './1796800000000-InboxDeadHoldsTheLine';
import { SharedLimits1796700000000 } from './1796700000000-SharedLimits';
import { RetentionIndexes1797480000000 } from './1797480000000-RetentionIndexes';
import { RetentionOfUnhandledEvents1797500000000 } from './1797500000000-RetentionOfUnhandledEvents';

/** Every migration, in order. `npm run migration:generate` writes a new file here; list it below. */
export const MIGRATIONS: (new () => MigrationInterface)[] = [
  InitialSchema1795704041176,
  DrainRecoveryAndInboxClaims1795704600000,
  PortalRateBuckets1796300000000,
  ExampleDeals1796300000001,
  PortalLicenseFamily1796300000002,
  PortalUserTokens1796400000000,
  DrainRetryBackoff1796200000000,
  InboxRunFencing1796100000000,
  AppLifecycle1796600000000,
  PortalPlacements1796900000000,
  Robots1797000000000,
  InboxDeadHoldsTheLine1796800000000,
  SharedLimits1796700000000,
  InboxLineHeads1797400000000,
  RobotAnswersSeenByOperators1797200000000,
  PortalSearch1797100000000,
  RetentionIndexes1797480000000,
  RetentionOfUnhandledEvents1797500000000,
];
