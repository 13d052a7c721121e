import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { InboxService } from '../inbox/inbox.service';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { DrainScheduler } from '../offline-queue/drain-scheduler.service';
import { InstallationNotConfirmedError } from '../portals/installation.errors';
import { InstallationService } from '../portals/installation.service';
import { EventNotification, uninstallAsksForCleanup } from './event-notification';
import { EventVerifier, Verification } from './event-verifier.service';
import { EventNotVerifiedError } from './webhook.errors';

export type EventOutcome =
  | 'installed'
  | 'duplicate_install'
  | 'uninstalled'
  | 'duplicate_uninstall'
  | 'drain_requested'
  | 'stored'
  | 'duplicate';

/**
 * Routes a parsed event after verifying it. Nothing happens before verification; ONOFFLINEEVENT and
 * online events never call Bitrix24 inside the request. Tokens that come with an event are never
 * used: only ONAPPINSTALL's refresh token is exchanged, as proof of the installation.
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
      case 'ONAPPUNINSTALL': {
        // It carries no OAuth tokens: the application token is its only proof (any status will do).
        const verification = await this.verify(notification);
        if (!verification.verified) this.reject(notification, verification.reason);
        const clean = uninstallAsksForCleanup(notification);
        const { uninstalled } = await this.installation.uninstall(memberId, { clean });
        return uninstalled ? 'uninstalled' : 'duplicate_uninstall';
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
   * Online events carry no id. The same event name, firing second and data is the same delivery;
   * without `ts`, the arrival second stands in, so a resend within that second still counts once.
   */
  private dedupKey(notification: EventNotification): string {
    const firedAt = notification.firedAt ?? new Date();
    const second = Math.floor(firedAt.getTime() / 1000);
    return createHash('sha256')
      .update(`${notification.event}\n${second}\n${JSON.stringify(notification.data ?? null)}`)
      .digest('hex');
  }
}
