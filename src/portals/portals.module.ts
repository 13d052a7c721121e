import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { AppUpdateService } from './app-update.service';
import { PortalDomainMoves } from './domain-move.service';
import { EventBindingService } from './event-binding.service';
import { InstallationService } from './installation.service';
import { LicenseScheduler } from './license.scheduler';
import { LicenseService } from './license.service';
import { LifecycleRefusals } from './lifecycle-refusals';
import { PortalInstallSweeper } from './portal-install-sweeper';
import { PortalMetrics } from './portal.metrics';
import { PortalStatusService } from './portal-status.service';
import { TokenCipher } from './token-cipher';
import { TokenKeepAliveScheduler } from './token-keep-alive.scheduler';
import { TokenKeepAlive } from './token-keep-alive.service';
import { TokenVault } from './token-vault.service';
import { UninstallConfirmation } from './uninstall-confirmation.service';
import { UserTokenVault } from './user-token-vault.service';

/** Installations: their token chains and their users' (encrypted), their statuses and the chains' keep-alive. */
@Global()
@Module({
  providers: [
    {
      provide: TokenCipher,
      useFactory: (config: AppConfig, appLogger: AppLogger) =>
        TokenCipher.fromConfig(config, appLogger.child('token-cipher')),
      inject: [AppConfig, AppLogger],
    },
    TokenVault,
    UserTokenVault,
    PortalStatusService,
    PortalDomainMoves,
    PortalMetrics,
    TokenKeepAlive,
    TokenKeepAliveScheduler,
    InstallationService,
    EventBindingService,
    PortalInstallSweeper,
    LicenseService,
    LicenseScheduler,
    AppUpdateService,
    UninstallConfirmation,
    LifecycleRefusals,
  ],
  exports: [
    TokenVault,
    UserTokenVault,
    PortalStatusService,
    PortalDomainMoves,
    PortalMetrics,
    TokenKeepAlive,
    InstallationService,
    EventBindingService,
    TokenCipher,
    LicenseService,
    AppUpdateService,
    UninstallConfirmation,
    LifecycleRefusals,
  ],
})
export class PortalsModule {}
