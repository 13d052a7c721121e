import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { InboxService } from '../inbox/inbox.service';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { DrainScheduler } from '../offline-queue/drain-scheduler.service';
import { AppUpdateNotConfirmedError, AppUpdateService } from '../portals/app-update.service';
import { InstallationNotConfirmedError } from '../portals/installation.errors';
import { InstallationService } from '../portals/installation.service';
import { LicenseService } from '../portals/license.service';
import { LifecycleRefusals } from '../portals/lifecycle-refusals';
import type { PortalStatus } from '../portals/portal-status';
import { UninstallConfirmation, UninstallVerdict } from '../portals/uninstall-confirmation.service';
import { EventNotification, uninstallAsksForCleanup, updatedVersion } from './event-notification';
import { EventVerifier, Verification } from './event-verifier.service';
import { EventNotVerifiedError } from './webhook.errors';

export type EventOutcome =
  | 'installed'
  | 'duplicate_install'
  | 'uninstalled'
  | 'duplicate_uninstall'
  | 'uninstall_not_confirmed'
  | 'uninstall_pending'
  | 'updated'
  | 'duplicate_update'
  | 'update_pending'
  | 'license_read_requested'
  | 'license_read_skipped'
  | 'drain_requested'
  | 'stored'
  | 'duplicate';

/**
 * How long an ONAPPUNINSTALL waits for Bitrix24 to confirm it before it is answered. A user who
 * removed the app expects it to stop at once, and the confirmation is one app.info call that
 * usually takes well under a second; when Bitrix24 is slower the event is answered now and the
 * confirmation finishes in the background (until then the portal stays as it was, and any call the
 * product makes with the removed app's chain is refused by Bitrix24 and retires the portal anyway).
 */
export const UNINSTALL_CONFIRMATION_WAIT_MS = 5_000;

/**
 * Routes a parsed event after verifying it. Nothing happens before verification; ONOFFLINEEVENT and
 * online events never call Bitrix24 inside the request. Tokens that come with an event are used
 * only as proof: ONAPPINSTALL's refresh token is exchanged at the OAuth server, ONAPPUPDATE's
 * access token is shown to the portal at its stored address. Lifecycle events that only Bitrix24
 * can vouch for (ONAPPUNINSTALL, ONAPPUPDATE) act only once Bitrix24 confirmed them.
 */
@Injectable()
export class EventWebhookService {
  private readonly logger: Logger;
  private readonly outcomes: Counter<'outcome'>;

  constructor(
    private readonly verifier: EventVerifier,
    private readonly installation: InstallationService,
    private readonly drainScheduler: DrainScheduler,
    private readonly inbox: InboxService,
    private readonly appUpdate: AppUpdateService,
    private readonly uninstallConfirmation: UninstallConfirmation,
    private readonly license: LicenseService,
    private readonly refusals: LifecycleRefusals,
    metrics: MetricsRegistry,
    appLogger: AppLogger,
  ) {
    this.logger = appLogger.child('event-webhook');
    this.outcomes = metrics.counter(
      'bitrix24_webhook_events_total',
      'Event notifications received at /bitrix24/events, by outcome',
      ['outcome'],
    );
  }

  /** `clientAddress` (where the POST came from) counts only against an ONAPPINSTALL's allowance. */
  async receive(notification: EventNotification, clientAddress: string): Promise<EventOutcome> {
    const outcome = await this.route(notification, clientAddress);
    this.outcomes.inc({ outcome });
    return outcome;
  }

  private async route(
    notification: EventNotification,
    clientAddress: string,
  ): Promise<EventOutcome> {
    const { memberId } = notification;
    switch (notification.event) {
      case 'ONAPPINSTALL':
        return this.install(notification, clientAddress);
      case 'ONAPPUNINSTALL':
        return this.uninstall(notification);
      case 'ONAPPUPDATE':
        return this.update(notification);
      case 'ONAPPPAYMENT': {
        // No application_token, no tokens: nothing vouches for it, so it only asks for a re-read.
        const request = await this.license.requestRead(memberId, 'ONAPPPAYMENT');
        return request === 'requested' ? 'license_read_requested' : 'license_read_skipped';
      }
      case 'ONOFFLINEEVENT':
        await this.verifyActive(notification);
        this.drainScheduler.request(memberId);
        return 'drain_requested';
      default: {
        await this.verifyActive(notification);
        const { stored } = await this.inbox.storeOnlineEvent({
          memberId,
          eventName: notification.event,
          data: notification.data ?? null,
          bitrixTimestamp: notification.firedAt,
          dedupKey: this.dedupKey(notification),
        });
        return stored ? 'stored' : 'duplicate';
      }
    }
  }

  /**
   * ONAPPINSTALL is confirmed by exchanging its refresh token, whatever we know of the portal: a
   * re-install may keep the application token, and its fresh chain must replace the old one. A
   * repeated ONAPPINSTALL carries a refresh token we already spent: for an active portal whose
   * application token matches, that refusal marks a duplicate, which changes nothing.
   */
  private async install(
    notification: EventNotification,
    clientAddress: string,
  ): Promise<EventOutcome> {
    const { memberId, refreshToken, applicationToken } = notification;
    if (refreshToken === undefined) this.reject(notification, 'ONAPPINSTALL without refresh_token');
    try {
      await this.installation.installFromEvent(
        { memberId, refreshToken, applicationToken },
        clientAddress,
      );
      return 'installed';
    } catch (error) {
      if (
        error instanceof InstallationNotConfirmedError &&
        error.reason === 'refresh_token_rejected'
      ) {
        const verification = await this.verify(notification);
        if (verification.verified && verification.status === 'active') {
          this.logger.info({ memberId }, 'duplicate ONAPPINSTALL ignored');
          return 'duplicate_install';
        }
      }
      throw error;
    }
  }

  /**
   * ONAPPUNINSTALL carries no OAuth tokens, and its application_token is readable by every user
   * who opens the app: it is acted on only once Bitrix24 refuses the portal's chain as uninstalled.
   */
  private async uninstall(notification: EventNotification): Promise<EventOutcome> {
    const { memberId } = notification;
    const verification = await this.verify(notification);
    if (!verification.verified) this.reject(notification, verification.reason);
    const clean = uninstallAsksForCleanup(notification);
    if (verification.status === 'uninstalled' || verification.status === 'deleted') {
      await this.installation.uninstall(memberId, { clean });
      return 'duplicate_uninstall';
    }
    const verdict = this.uninstallConfirmation.verdict(memberId);
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      verdict,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), UNINSTALL_CONFIRMATION_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (waited === undefined) {
      this.logger.info({ memberId }, 'uninstall answered; Bitrix24 is still confirming it');
      void verdict
        .then((late) => this.actOnUninstall(memberId, late, clean, verification.status))
        .then((outcome) => this.outcomes.inc({ outcome: `late_${outcome}` }))
        .catch((error: unknown) =>
          this.logger.error({ memberId, err: error }, 'late uninstall confirmation failed'),
        );
      return 'uninstall_pending';
    }
    return this.actOnUninstall(memberId, waited, clean, verification.status);
  }

  private async actOnUninstall(
    memberId: string,
    verdict: UninstallVerdict,
    clean: boolean,
    statusBefore: PortalStatus,
  ): Promise<EventOutcome> {
    if (verdict === 'installed' || verdict === 'unknown') {
      const reason = verdict === 'installed' ? 'app_still_installed' : 'portal_unavailable';
      this.refusals.count('ONAPPUNINSTALL', reason);
      this.logger.warn(
        { memberId, reason },
        'ONAPPUNINSTALL not confirmed by Bitrix24: the portal keeps its status and tokens',
      );
      return 'uninstall_not_confirmed';
    }
    const { uninstalled } = await this.installation.uninstall(memberId, { clean });
    // The confirming call itself may have retired the portal when Bitrix24 refused its chain.
    const wasInstalled = statusBefore !== 'uninstalled' && statusBefore !== 'deleted';
    return uninstalled || wasInstalled ? 'uninstalled' : 'duplicate_uninstall';
  }

  /** ONAPPUPDATE: a new application_token, confirmed with the portal before it replaces ours. */
  private async update(notification: EventNotification): Promise<EventOutcome> {
    try {
      return await this.appUpdate.apply({
        memberId: notification.memberId,
        applicationToken: notification.applicationToken,
        accessToken: notification.accessToken,
        version: updatedVersion(notification),
        serverEndpoint: notification.serverEndpoint,
      });
    } catch (error) {
      if (error instanceof AppUpdateNotConfirmedError)
        this.outcomes.inc({ outcome: 'not_verified' });
      throw error;
    }
  }

  private async verify(notification: EventNotification): Promise<Verification> {
    return this.verifier.verify(notification.memberId, notification.applicationToken);
  }

  private async verifyActive(notification: EventNotification): Promise<void> {
    const verification = await this.verify(notification);
    if (!verification.verified) this.reject(notification, verification.reason);
    if (verification.status !== 'active') {
      this.reject(notification, `portal is ${verification.status}`);
    }
  }

  private reject(notification: EventNotification, reason: string): never {
    this.outcomes.inc({ outcome: 'not_verified' });
    this.logger.debug(
      { memberId: notification.memberId, event: notification.event, reason },
      'event rejected',
    );
    throw new EventNotVerifiedError();
  }

  /**
   * Online events carry no id, and Bitrix24 never resends one: what repeats is a POST delivered
   * twice on the way (a proxy's retry). The event name, firing second, data and the delivery's own
   * token digest identify a delivery, so two real changes of one deal in one second are both kept;
   * without `ts`, the arrival second stands in.
   */
  private dedupKey(notification: EventNotification): string {
    const firedAt = notification.firedAt ?? new Date();
    const second = Math.floor(firedAt.getTime() / 1000);
    return createHash('sha256')
      .update(
        `${notification.event}\n${second}\n${notification.deliveryDigest ?? ''}\n${JSON.stringify(notification.data ?? null)}`,
      )
      .digest('hex');
  }
}
