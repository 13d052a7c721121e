import { timingSafeEqual } from 'node:crypto';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { Bitrix24ApiError } from '../bitrix24/bitrix24-api.error';
import { InstallerRightsClient } from '../bitrix24/installer-rights.client';
import { knownOAuthServer } from '../bitrix24/oauth-server-choice';
import { AppConfig } from '../config/app-config';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { EventBindingService } from './event-binding.service';
import { hashApplicationToken, InstallationService } from './installation.service';
import { LifecycleRefusals } from './lifecycle-refusals';
import { PortalEntity } from './portal.entity';

/** What an ONAPPUPDATE presents; none of it is trusted until the portal confirms the access token. */
export interface AppUpdateRequest {
  memberId: string;
  /** The new application_token the portal's events carry from now on. */
  applicationToken: string;
  /** The updating user's access token: the only part that can be checked (app.info). */
  accessToken: string | undefined;
  /** `data[VERSION]`, the version just installed. */
  version: string | undefined;
  /** `auth[server_endpoint]`: stored with a confirmed update when it names a known OAuth server. */
  serverEndpoint?: string;
}

export type AppUpdateOutcome = 'updated' | 'duplicate_update' | 'update_pending';

/**
 * When the portal does not answer, the confirmation is tried again after these waits (the
 * update's access token lives an hour): a blip must not leave every later event refused.
 */
const RETRY_DELAYS_MS = [10_000, 60_000, 300_000, 1_200_000];

/** Why an ONAPPUPDATE was not acted on; every one is counted, none changes anything. */
export type AppUpdateRefusal =
  | 'unknown_portal'
  | 'portal_not_active'
  | 'no_access_token'
  | 'token_refused'
  | 'other_app'
  | 'version_mismatch'
  | 'not_installed';

export class AppUpdateNotConfirmedError extends DomainError {
  readonly kind = 'unauthenticated';

  constructor(readonly reason: AppUpdateRefusal) {
    super('event_not_verified', 'The event could not be verified');
  }
}

/** The portal could not be asked; nothing changed yet. */
class AppUpdateUnconfirmableError extends Error {}

/**
 * ONAPPUPDATE (`on-app-update.md`): a new version is installed and the portal's events carry a
 * new application_token from now on. The stored token cannot vouch for the new one, so the event's
 * access token is checked with the portal itself, at the *stored* client_endpoint: app.info must
 * answer for our client_id, installed, at the version the event names. Only then, in one
 * transaction, the token hash is replaced and the version recorded; then events are re-bound.
 * A forged update (made-up tokens, another app's, endpoints of the sender's choosing) is refused
 * before anything changes and no address from the request is ever called. A replay of an older
 * update fails the version check; a repeat of the latest one finds its token already stored.
 */
@Injectable()
export class AppUpdateService implements OnApplicationShutdown {
  private readonly log: Logger;
  private readonly retries = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly portalProbe: InstallerRightsClient,
    private readonly installation: InstallationService,
    private readonly eventBinding: EventBindingService,
    private readonly config: AppConfig,
    private readonly refusals: LifecycleRefusals,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('app-update');
  }

  onApplicationShutdown(): void {
    this.retries.forEach((timer) => clearTimeout(timer));
    this.retries.clear();
  }

  /**
   * Confirms and applies an update. When the portal does not answer, the update is answered
   * `update_pending` and confirmed again in the background (this process only).
   */
  async apply(request: AppUpdateRequest, attempt = 0): Promise<AppUpdateOutcome> {
    try {
      return await this.confirmAndApply(request);
    } catch (error) {
      if (!(error instanceof AppUpdateUnconfirmableError)) throw error;
      const delay = RETRY_DELAYS_MS[attempt];
      if (delay === undefined) {
        this.refusals.count('ONAPPUPDATE', 'portal_unavailable');
        this.log.error(
          { memberId: request.memberId, attempts: attempt + 1 },
          'ONAPPUPDATE never confirmed: the portal did not answer; it needs a re-install',
        );
        return 'update_pending';
      }
      clearTimeout(this.retries.get(request.memberId));
      const timer = setTimeout(() => {
        this.retries.delete(request.memberId);
        this.apply(request, attempt + 1).catch((retryError: unknown) =>
          this.log.warn(
            {
              memberId: request.memberId,
              code: retryError instanceof DomainError ? retryError.code : undefined,
            },
            'ONAPPUPDATE retry not applied',
          ),
        );
      }, delay);
      timer.unref();
      this.retries.set(request.memberId, timer);
      return 'update_pending';
    }
  }

  private async confirmAndApply(request: AppUpdateRequest): Promise<AppUpdateOutcome> {
    const { memberId } = request;
    const portal = await this.dataSource.getRepository(PortalEntity).findOne({
      select: {
        memberId: true,
        status: true,
        clientEndpoint: true,
        applicationTokenHash: true,
        appVersion: true,
      },
      where: { memberId },
    });
    if (!portal) return this.refuse(request, 'unknown_portal');
    if (portal.status !== 'active') return this.refuse(request, 'portal_not_active');
    if (this.isStoredToken(portal.applicationTokenHash, request.applicationToken)) {
      this.log.info({ memberId, version: request.version }, 'repeated ONAPPUPDATE ignored');
      return 'duplicate_update';
    }
    if (request.accessToken === undefined) return this.refuse(request, 'no_access_token');

    const version = await this.confirm(request, portal.clientEndpoint, request.accessToken);
    const previousVersion = portal.appVersion;
    const updated = await this.dataSource.transaction(async (manager) => {
      const locked = await manager.findOne(PortalEntity, {
        select: { memberId: true, status: true, applicationTokenHash: true },
        where: { memberId },
        lock: { mode: 'pessimistic_write' },
      });
      if (locked?.status !== 'active') return false;
      if (this.isStoredToken(locked.applicationTokenHash, request.applicationToken)) return false;
      await manager.update(
        PortalEntity,
        { memberId },
        {
          applicationTokenHash: hashApplicationToken(request.applicationToken),
          appVersion: version,
          appUpdatedAt: new Date(),
          ...(knownOAuthServer(request.serverEndpoint, this.config.bitrix24.oauthUrl) === null
            ? {}
            : { serverEndpoint: request.serverEndpoint }),
        },
      );
      return true;
    });
    if (!updated) return 'duplicate_update';
    // Verifier caches drop the old token at once here, within seconds on other replicas.
    this.installation.announceChange(memberId);
    this.log.info(
      { memberId, version, previousVersion },
      'app updated: application token replaced',
    );

    try {
      await this.eventBinding.bind(memberId);
    } catch (error) {
      // The update stands; the bindings are re-checked at the next install, update or rebind.
      this.log.warn(
        { memberId, err: error, code: error instanceof DomainError ? error.code : undefined },
        'app updated but events were not re-bound',
      );
    }
    return 'updated';
  }

  /** The version app.info confirms, or a refusal. */
  private async confirm(
    request: AppUpdateRequest,
    clientEndpoint: string,
    accessToken: string,
  ): Promise<string | null> {
    let info;
    try {
      info = await this.portalProbe.appInfo(clientEndpoint, accessToken);
    } catch (error) {
      if (!(error instanceof Bitrix24ApiError)) throw error;
      if (error.category === 'retryable') {
        this.log.warn(
          { memberId: request.memberId, bitrixCode: error.bitrixCode },
          'ONAPPUPDATE not confirmed yet: the portal did not answer',
        );
        throw new AppUpdateUnconfirmableError();
      }
      return this.refuse(request, 'token_refused', error.bitrixCode);
    }
    if (info.CODE !== this.config.bitrix24.clientId) return this.refuse(request, 'other_app');
    if (info.INSTALLED === false) return this.refuse(request, 'not_installed');
    const confirmed =
      typeof info.VERSION === 'number' || typeof info.VERSION === 'string'
        ? String(info.VERSION).slice(0, 32)
        : null;
    if (request.version !== undefined && confirmed !== request.version) {
      return this.refuse(request, 'version_mismatch');
    }
    return confirmed ?? request.version ?? null;
  }

  private isStoredToken(storedHash: Buffer | null, applicationToken: string): boolean {
    if (storedHash === null || storedHash.length !== 32) return false;
    return timingSafeEqual(storedHash, hashApplicationToken(applicationToken));
  }

  private refuse(request: AppUpdateRequest, reason: AppUpdateRefusal, bitrixCode?: string): never {
    this.refusals.count('ONAPPUPDATE', reason);
    this.log.warn(
      { memberId: request.memberId, reason, bitrixCode, version: request.version },
      'ONAPPUPDATE not confirmed by the portal: nothing changed',
    );
    throw new AppUpdateNotConfirmedError(reason);
  }
}
