import { Injectable } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import type { Logger } from 'pino';
import { AppLogger } from '../logging/app-logger';
import { InstallationService } from './installation.service';

/** INSTALL_PENDING_TIMEOUT_SECONDS is at least 60, so a stalled installation ends within twice that. */
const SWEEP_INTERVAL_MS = 60_000;

/** Periodically ends installations stuck in `new` (see InstallationService.sweepStalledInstallations). */
@Injectable()
export class PortalInstallSweeper {
  private readonly logger: Logger;
  private running = false;

  constructor(
    private readonly installation: InstallationService,
    appLogger: AppLogger,
  ) {
    this.logger = appLogger.child('install-sweeper');
  }

  @Interval('portal-install-sweep', SWEEP_INTERVAL_MS)
  async sweep(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.installation.sweepStalledInstallations();
    } catch (error) {
      this.logger.error({ err: error }, 'sweep of stalled installations failed');
    } finally {
      this.running = false;
    }
  }
}
