import { Global, Module } from '@nestjs/common';
import { Bitrix24Http } from './bitrix24-http';
import { Bitrix24Client } from './bitrix24.client';
import { InstallerRightsClient } from './installer-rights.client';
import { OAuthClient } from './oauth.client';
import { OfflineCallTimeout } from './offline-call-timeout';
import { OperatingTimeTracker } from './operating-time.tracker';
import { PortalDirectory } from './portal-directory';
import { PortalRateLimiter } from './portal-rate-limiter';
import { RestCallExecutor } from './rest-call.executor';

/** The only code that talks HTTP to Bitrix24: OAuth and REST (token vault and statuses: PortalsModule). */
@Global()
@Module({
  providers: [
    Bitrix24Http,
    OAuthClient,
    InstallerRightsClient,
    Bitrix24Client,
    RestCallExecutor,
    PortalDirectory,
    PortalRateLimiter,
    OperatingTimeTracker,
    OfflineCallTimeout,
  ],
  exports: [
    Bitrix24Client,
    OAuthClient,
    InstallerRightsClient,
    PortalDirectory,
    OperatingTimeTracker,
  ],
})
export class Bitrix24Module {}
