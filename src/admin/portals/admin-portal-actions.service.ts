import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { AppLogger } from '../../logging/app-logger';
import { DrainService } from '../../offline-queue/drain.service';
import { EventBindingService } from '../../portals/event-binding.service';
import { InstallationService } from '../../portals/installation.service';
import { TokenVault } from '../../portals/token-vault.service';
import {
  DrainReportDto,
  PortalDetailDto,
  RebindResultDto,
  RefreshTokenResultDto,
} from './admin-portal.dto';
import { AdminPortalsQueries } from './admin-portals.queries';

/**
 * The operator's levers on one portal. Each one delegates to the service that owns the rule
 * (drain lease, binding diff, refresh lock, offboarding), so an admin action behaves exactly
 * like the automatic one; this class only refuses unknown portals and leaves an audit line.
 */
@Injectable()
export class AdminPortalActions {
  private readonly log: Logger;

  constructor(
    private readonly queries: AdminPortalsQueries,
    private readonly drains: DrainService,
    private readonly bindings: EventBindingService,
    private readonly tokens: TokenVault,
    private readonly installations: InstallationService,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('admin');
  }

  /** Drains now, in this request; a drain already running elsewhere answers `busy`. */
  async drain(memberId: string): Promise<DrainReportDto> {
    await this.queries.assertExists(memberId);
    const report = await this.drains.drainPortal(memberId);
    this.log.info(
      { memberId, outcome: report.outcome, events: report.events, pages: report.pages },
      'operator drained a portal',
    );
    return report;
  }

  async rebind(memberId: string): Promise<RebindResultDto> {
    await this.queries.assertExists(memberId);
    const report = await this.bindings.bind(memberId);
    this.log.info(
      { memberId, bound: report.bound.length, alreadyBound: report.alreadyBound.length },
      'operator re-bound events',
    );
    return { memberId, ...report };
  }

  /** Refreshes under the same row lock as automatic refreshes; answers the new expiry only. */
  async refreshToken(memberId: string): Promise<RefreshTokenResultDto> {
    await this.queries.assertExists(memberId);
    const { generation, accessExpiresAt } = await this.tokens.refresh(memberId);
    this.log.info({ memberId, generation }, 'operator refreshed the token chain');
    return { memberId, generation, accessExpiresAt: accessExpiresAt.toISOString() };
  }

  /** Status `deleted`, tokens wiped, stored events kept; answers the portal as it now is. */
  async offboard(memberId: string): Promise<PortalDetailDto> {
    await this.queries.assertExists(memberId);
    await this.installations.offboard(memberId);
    this.log.info({ memberId }, 'operator offboarded a portal');
    return this.queries.detail(memberId);
  }
}
