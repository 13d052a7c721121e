import { hash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { Bitrix24ApiError, OAuthError } from '../bitrix24/bitrix24-api.error';
import type { OAuthTokenResponse } from '../bitrix24/bitrix24.types';
import { InstallerRightsClient } from '../bitrix24/installer-rights.client';
import { OAuthClient } from '../bitrix24/oauth.client';
import { AppConfig } from '../config/app-config';
import { DomainError } from '../errors/domain-error';
import { InboxService } from '../inbox/inbox.service';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { SharedLimit, SharedLimits } from '../shared-limits/shared-limits';
import { ConfirmationSlots } from './confirmation-slots';
import { BindingReport, EventBindingService } from './event-binding.service';
import {
  InstallationBusyError,
  InstallationNotConfirmedError,
  InstallationRateLimitedError,
  InstallationSupersededError,
  InstallationUnavailableError,
} from './installation.errors';
import { PortalStatusChangeEntity } from './portal-status-change.entity';
import { PortalNotFoundError } from './portal-status.error';
import { PortalStatusService } from './portal-status.service';
import { PLAN_STATUSES, PlanStatus, PortalStatus } from './portal-status';
import { PortalEntity } from './portal.entity';
import { TokenVault } from './token-vault.service';

/** What an installer (the UI install page or ONAPPINSTALL) presents; none of it is trusted yet. */
export interface InstallationRequest {
  memberId: string;
  /** Exchanged once at the OAuth server: that exchange is the proof the installation is genuine. */
  refreshToken: string;
  applicationToken: string;
}

export interface InstallationResult {
  memberId: string;
  /** Host of the portal's client_endpoint, as the OAuth server gave it. */
  domain: string;
  /** The status before this installation; null for a portal seen for the first time. */
  previousStatus: PortalStatus | null;
  binding: BindingReport;
}

export interface UninstallResult {
  /** False when the portal was already uninstalled or offboarded. */
  uninstalled: boolean;
  eventsPurged: boolean;
}

type InstallSource = 'install page' | 'ONAPPINSTALL';

/**
 * Only the SHA-256 of a portal's application_token is stored: enough to verify, useless to a thief.
 * Computed on every event notification: the one-shot hash() through hex is a third of the cost of
 * a Hash object (its 'buffer' output is no faster than createHash).
 */
export function hashApplicationToken(applicationToken: string): Buffer {
  return Buffer.from(hash('sha256', applicationToken, 'hex'), 'hex');
}

/** How many stalled installations one sweep transaction takes. */
const SWEEP_BATCH = 100;
/** How long an installation waits for a confirmation slot before it is answered installation_busy. */
const CONFIRMATION_SLOT_WAIT_MS = 2_000;
const BUSY_RETRY_AFTER_SECONDS = 5;

/**
 * The installation lifecycle: confirm an installation at the OAuth server (and that the chain is a
 * portal administrator's), store the portal and its token chain, bind events, activate; uninstall,
 * offboard, and sweep installations that never completed. Statuses change only through
 * PortalStatusService. Confirmations are unauthenticated outbound work, so they are bounded: a
 * few at once per instance, and a per-address allowance.
 */
@Injectable()
export class InstallationService {
  private readonly logger: Logger;
  private readonly changeListeners = new Set<(memberId: string) => void>();
  private readonly confirmationSlots: ConfirmationSlots;
  private readonly installerAddresses: SharedLimit;
  private readonly throttled: Counter<'reason'>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly oauth: OAuthClient,
    private readonly installerRights: InstallerRightsClient,
    private readonly tokenVault: TokenVault,
    private readonly statuses: PortalStatusService,
    private readonly eventBinding: EventBindingService,
    private readonly inbox: InboxService,
    private readonly config: AppConfig,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
    limits: SharedLimits,
  ) {
    this.logger = appLogger.child('installation');
    this.confirmationSlots = new ConfirmationSlots(
      config.portals.confirmationConcurrency,
      CONFIRMATION_SLOT_WAIT_MS,
    );
    // Counted in the database: N replicas together allow one address its allowance, not N times it.
    this.installerAddresses = limits.limit({
      name: 'install_confirmations',
      points: config.portals.confirmationsPerAddressPerMinute,
      windowSeconds: 60,
    });
    this.throttled = metrics.counter(
      'installation_confirmations_throttled_total',
      'Installations refused before any call to Bitrix24, by reason (busy or rate_limited)',
      ['reason'],
    );
  }

  /** Called with a member_id whenever this process changes a portal's status or application token. */
  onInstallationChanged(listener: (memberId: string) => void): void {
    this.changeListeners.add(listener);
  }

  /** `clientAddress` is where the request came from; it only counts against that address's allowance. */
  installFromUi(request: InstallationRequest, clientAddress: string): Promise<InstallationResult> {
    return this.install(request, 'install page', clientAddress);
  }

  installFromEvent(
    request: InstallationRequest,
    clientAddress: string,
  ): Promise<InstallationResult> {
    return this.install(request, 'ONAPPINSTALL', clientAddress);
  }

  /** ONAPPUNINSTALL: the portal removed the app. Its handlers are gone on Bitrix24's side too. */
  async uninstall(memberId: string, options: { clean: boolean }): Promise<UninstallResult> {
    const uninstalled = await this.retire(memberId, 'uninstalled', 'ONAPPUNINSTALL received', {
      forgetBindings: true,
    });
    const eventsPurged = options.clean && this.config.portals.uninstallCleanEvents === 'purge';
    if (eventsPurged) await this.inbox.purgePortal(memberId);
    this.logger.info(
      { memberId, duplicate: !uninstalled, clean: options.clean, eventsPurged },
      uninstalled ? 'portal uninstalled' : 'duplicate uninstall ignored',
    );
    return { uninstalled, eventsPurged };
  }

  /** An operator's decision: status `deleted`, tokens wiped, stored events kept, no more traffic. */
  async offboard(memberId: string): Promise<void> {
    const offboarded = await this.retire(memberId, 'deleted', 'offboarded by an operator', {
      forgetBindings: false,
    });
    this.logger.info(
      { memberId, duplicate: !offboarded },
      offboarded ? 'portal offboarded' : 'portal was already offboarded',
    );
  }

  /**
   * Installations stuck in `new` (stored, but binding never completed) for longer than
   * INSTALL_PENDING_TIMEOUT_SECONDS end as `uninstalled` with their tokens wiped. Returns how many.
   */
  async sweepStalledInstallations(): Promise<number> {
    const timeoutSeconds = this.config.portals.installPendingTimeoutSeconds;
    const cutoff = new Date(Date.now() - timeoutSeconds * 1000);
    const reason = `installation did not complete within ${timeoutSeconds} s`;
    const swept: string[] = [];
    for (;;) {
      const batch = await this.dataSource.transaction(async (manager) => {
        const stalled = await manager
          .createQueryBuilder(PortalEntity, 'portal')
          .select('portal.memberId')
          .where('portal.status = :status', { status: 'new' })
          .andWhere('COALESCE(portal.installed_at, portal.status_changed_at) < :cutoff', { cutoff })
          .orderBy('portal.memberId')
          .limit(SWEEP_BATCH)
          .setLock('pessimistic_write')
          .setOnLocked('skip_locked')
          .getMany();
        for (const { memberId } of stalled) {
          await this.statuses.transition(memberId, 'uninstalled', reason, manager);
          await this.tokenVault.wipe(memberId, manager);
          await manager.update(PortalEntity, { memberId }, { boundEvents: [], boundAt: null });
        }
        return stalled.map(({ memberId }) => memberId);
      });
      swept.push(...batch);
      if (batch.length < SWEEP_BATCH) break;
    }
    swept.forEach((memberId) => this.notifyChanged(memberId));
    if (swept.length > 0) {
      this.logger.info({ count: swept.length, timeoutSeconds }, 'stalled installations swept');
    }
    return swept.length;
  }

  private async install(
    request: InstallationRequest,
    source: InstallSource,
    clientAddress: string,
  ): Promise<InstallationResult> {
    const startedAt = performance.now();
    const { memberId } = request;
    const tokens = await this.withinLimits(request, source, clientAddress, () =>
      this.confirm(request, source),
    );
    const domain = new URL(tokens.client_endpoint).host;

    const previousStatus = await this.store(request, tokens, domain, source);
    this.notifyChanged(memberId);

    let binding: BindingReport;
    try {
      binding = await this.eventBinding.bind(memberId);
    } catch (error) {
      this.logger.warn(
        { memberId, source, err: error },
        'installation stored but event binding failed',
      );
      const cause = error instanceof DomainError ? ` (${error.message})` : '';
      throw new InstallationUnavailableError(
        'event_binding_failed',
        `Your portal did not accept the application's event handlers${cause}. Open the application again to retry.`,
      );
    }

    await this.activate(memberId, source);
    this.notifyChanged(memberId);
    this.logger.info(
      {
        memberId,
        domain,
        source,
        previousStatus,
        bound: binding.bound.length,
        alreadyBound: binding.alreadyBound.length,
        deliveryMode: binding.deliveryMode,
        durationMs: Math.round(performance.now() - startedAt),
      },
      previousStatus === null ? 'portal installed' : 'portal reinstalled',
    );
    return { memberId, domain, previousStatus, binding };
  }

  /**
   * Runs a confirmation within the address's allowance and a confirmation slot. The allowance is
   * taken first (a flood from one address never queues for slots) and given back when the
   * installation is confirmed, or when no slot freed up and nothing was sent.
   */
  private async withinLimits<T>(
    request: InstallationRequest,
    source: InstallSource,
    clientAddress: string,
    confirm: () => Promise<T>,
  ): Promise<T> {
    const attempt = await this.installerAddresses.take(clientAddress);
    if (!attempt.allowed) {
      const retryAfterSeconds = Math.max(1, Math.ceil(attempt.msBeforeNext / 1000));
      this.throttled.inc({ reason: 'rate_limited' });
      // Debug only: under a flood this would be one line per request.
      this.logger.debug(
        { claimedMemberId: request.memberId, source, clientAddress, retryAfterSeconds },
        'installation refused: too many confirmation attempts from this address',
      );
      throw new InstallationRateLimitedError(retryAfterSeconds);
    }
    if (!(await this.confirmationSlots.acquire())) {
      await this.installerAddresses.giveBack(clientAddress);
      this.throttled.inc({ reason: 'busy' });
      this.logger.warn(
        {
          claimedMemberId: request.memberId,
          source,
          inFlight: this.confirmationSlots.busy,
          waiting: this.confirmationSlots.waiting,
        },
        'installation refused: every confirmation slot stayed busy',
      );
      throw new InstallationBusyError(BUSY_RETRY_AFTER_SECONDS);
    }
    try {
      const confirmed = await confirm();
      await this.installerAddresses.giveBack(clientAddress);
      return confirmed;
    } finally {
      this.confirmationSlots.release();
    }
  }

  /**
   * Exchanges the presented refresh token at the configured OAuth server. Only its answer is
   * trusted: member_id, client_endpoint and plan come from it, never from the request, and
   * nothing is called at any address the request names.
   */
  private async confirm(
    request: InstallationRequest,
    source: InstallSource,
  ): Promise<OAuthTokenResponse> {
    let tokens: OAuthTokenResponse;
    try {
      tokens = await this.oauth.refresh(request.refreshToken);
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      this.logger.warn(
        { claimedMemberId: request.memberId, source, oauthError: error.bitrixCode },
        'installation not confirmed by the OAuth server',
      );
      if (error.category === 'retryable') {
        throw new InstallationUnavailableError(
          'oauth_unavailable',
          'The Bitrix24 authorization server could not be reached. Please try again in a moment.',
        );
      }
      if (error.bitrixCode === 'invalid_client') {
        throw new InstallationUnavailableError(
          'oauth_client_rejected',
          "Bitrix24 refused the application's own credentials. Please contact the application's vendor.",
        );
      }
      if (error.bitrixCode === 'PAYMENT_REQUIRED') {
        throw new InstallationNotConfirmedError(
          'payment_required',
          'Bitrix24 reports that this application is not paid for on your portal.',
        );
      }
      throw new InstallationNotConfirmedError(
        'refresh_token_rejected',
        'Bitrix24 did not confirm this installation: the authorization it carries is not valid.',
      );
    }

    if (tokens.member_id !== request.memberId) {
      this.logger.warn(
        { claimedMemberId: request.memberId, confirmedMemberId: tokens.member_id, source },
        'installation names a different portal than the OAuth server confirmed',
      );
      throw new InstallationNotConfirmedError(
        'member_mismatch',
        'Bitrix24 confirmed a different portal than the one this installation names.',
      );
    }
    if (!this.isUsableAnswer(tokens)) {
      this.logger.warn({ memberId: request.memberId, source }, 'OAuth answer is incomplete');
      throw new InstallationNotConfirmedError(
        'incomplete_answer',
        "Bitrix24's authorization server gave an incomplete answer. Please try again.",
      );
    }
    await this.confirmInstallerIsAdmin(tokens, source);
    return tokens;
  }

  /**
   * The chain becomes the portal's own and the offline-queue methods need an administrator. Every
   * user who opens the app sees the install form's tokens, so a chain is accepted only when the
   * portal says it is an administrator's. A refused chain was spent by our exchange: it was that
   * user's own session, never the portal's, so nothing of the portal's is lost.
   */
  private async confirmInstallerIsAdmin(
    tokens: OAuthTokenResponse,
    source: InstallSource,
  ): Promise<void> {
    const memberId = tokens.member_id;
    const userId = typeof tokens.user_id === 'number' ? tokens.user_id : null;
    let admin: boolean;
    try {
      admin = await this.installerRights.isPortalAdmin(tokens.client_endpoint, tokens.access_token);
    } catch (error) {
      if (!(error instanceof Bitrix24ApiError)) throw error;
      this.logger.warn(
        { memberId, source, userId, bitrixCode: error.bitrixCode },
        "the installer's rights could not be checked",
      );
      if (error.category === 'retryable') {
        throw new InstallationUnavailableError(
          'portal_unavailable',
          'Your Bitrix24 portal could not be reached to check who is installing. Please open the application again in a moment.',
        );
      }
      throw new InstallationNotConfirmedError(
        'installer_rights_refused',
        'Your Bitrix24 portal did not confirm that the installing user is an administrator. Please ask a portal administrator to open the application.',
      );
    }
    if (!admin) {
      this.logger.warn(
        { memberId, source, userId },
        'installation refused: the installer is not a portal administrator',
      );
      throw new InstallationNotConfirmedError(
        'installer_not_admin',
        'Only an administrator of your Bitrix24 portal can install this application. Please ask a portal administrator to open it.',
      );
    }
  }

  private isUsableAnswer(tokens: OAuthTokenResponse): boolean {
    if (typeof tokens.access_token !== 'string' || typeof tokens.refresh_token !== 'string') {
      return false;
    }
    if (typeof tokens.client_endpoint !== 'string') return false;
    try {
      const endpoint = new URL(tokens.client_endpoint);
      return (endpoint.protocol === 'https:' || endpoint.protocol === 'http:') && !!endpoint.host;
    } catch {
      return false;
    }
  }

  /** Portal row, token chain and application-token hash, all in one transaction. */
  private async store(
    request: InstallationRequest,
    tokens: OAuthTokenResponse,
    domain: string,
    source: InstallSource,
  ): Promise<PortalStatus | null> {
    const { memberId } = request;
    const fields = {
      domain,
      clientEndpoint: tokens.client_endpoint,
      serverEndpoint: typeof tokens.server_endpoint === 'string' ? tokens.server_endpoint : null,
      planStatus: PLAN_STATUSES.includes(tokens.status as PlanStatus)
        ? (tokens.status as PlanStatus)
        : null,
      applicationTokenHash: hashApplicationToken(request.applicationToken),
      scope: typeof tokens.scope === 'string' ? tokens.scope.slice(0, 1000) : null,
      installerUserId: typeof tokens.user_id === 'number' ? tokens.user_id : null,
      installedAt: new Date(),
      uninstalledAt: null,
    };
    return this.dataSource.transaction(async (manager) => {
      // Two installers of one new portal (install page and ONAPPINSTALL, or two replicas) queue here.
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`install:${memberId}`]);
      const existing = await manager.findOne(PortalEntity, {
        where: { memberId },
        lock: { mode: 'pessimistic_write' },
      });
      if (!existing) {
        await this.createPortal(manager, memberId, fields, `installation started via ${source}`);
      } else {
        await manager.update(PortalEntity, { memberId }, fields);
        if (existing.status !== 'new' && existing.status !== 'active') {
          await this.statuses.transition(
            memberId,
            'new',
            `reinstallation started via ${source}`,
            manager,
          );
        }
      }
      await this.tokenVault.storeChain(memberId, tokens, manager);
      return existing?.status ?? null;
    });
  }

  /** The very first status has no transition to go through: the portal and its audit row start together. */
  private async createPortal(
    manager: EntityManager,
    memberId: string,
    fields: Partial<PortalEntity>,
    reason: string,
  ): Promise<void> {
    await manager.insert(PortalEntity, {
      memberId,
      ...fields,
      status: 'new',
      statusReason: reason,
    });
    await manager.insert(PortalStatusChangeEntity, {
      memberId,
      fromStatus: null,
      toStatus: 'new',
      reason,
    });
    this.logger.info({ memberId, to: 'new', reason }, 'portal status changed');
  }

  private async activate(memberId: string, source: InstallSource): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const portal = await manager.findOne(PortalEntity, {
        where: { memberId },
        lock: { mode: 'pessimistic_write' },
      });
      // The sweep (or an uninstall) got there first: do not resurrect a portal whose tokens are gone.
      if (portal?.status !== 'new' && portal?.status !== 'active') {
        throw new InstallationSupersededError(memberId);
      }
      if (portal.status === 'new') {
        await this.statuses.transition(memberId, 'active', `installed via ${source}`, manager);
      }
    });
  }

  private async retire(
    memberId: string,
    to: 'uninstalled' | 'deleted',
    reason: string,
    options: { forgetBindings: boolean },
  ): Promise<boolean> {
    const changed = await this.dataSource.transaction(async (manager) => {
      const portal = await manager.findOne(PortalEntity, {
        where: { memberId },
        lock: { mode: 'pessimistic_write' },
      });
      if (!portal) throw new PortalNotFoundError(memberId);
      // An offboarded portal stays offboarded; the uninstall still wipes whatever it holds.
      const transition = portal.status !== to && portal.status !== 'deleted';
      if (transition) await this.statuses.transition(memberId, to, reason, manager);
      await this.tokenVault.wipe(memberId, manager);
      if (options.forgetBindings) {
        await manager.update(PortalEntity, { memberId }, { boundEvents: [], boundAt: null });
      }
      return transition;
    });
    this.notifyChanged(memberId);
    return changed;
  }

  /** Tells the listeners that a portal's status or application token changed outside this service. */
  announceChange(memberId: string): void {
    this.notifyChanged(memberId);
  }

  private notifyChanged(memberId: string): void {
    this.changeListeners.forEach((listener) => listener(memberId));
  }
}
