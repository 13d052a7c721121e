import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, Repository } from 'typeorm';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import type { BoundHandler } from '../bitrix24/bitrix24.types';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { LicenseService } from './license.service';
import { BoundEvent, PortalEntity } from './portal.entity';
import type { DeliveryMode } from './portal-status';

export interface BindingReport {
  /** Events bound by this run. */
  bound: string[];
  /** Events that were bound before (found in event.get, or refused as "already binded"). */
  alreadyBound: string[];
  deliveryMode: DeliveryMode;
}

interface WantedBinding {
  event: string;
  offline: boolean;
  options?: Record<string, unknown>;
}

/**
 * Keeps a portal's event bindings as configured: ONOFFLINEEVENT and the app's own lifecycle events
 * (ONAPPUNINSTALL, ONAPPUPDATE, ONAPPPAYMENT) online to our
 * handler URL, every BITRIX24_OFFLINE_EVENTS event offline. Binding is a diff against event.get,
 * so running it again binds nothing new.
 */
@Injectable()
export class EventBindingService {
  private readonly portals: Repository<PortalEntity>;
  private readonly logger: Logger;
  /** Further install/rebind steps (placements), run after the events are bound. */
  private readonly steps: ((memberId: string) => Promise<unknown>)[] = [];

  constructor(
    dataSource: DataSource,
    private readonly bitrix24: Bitrix24Client,
    private readonly config: AppConfig,
    appLogger: AppLogger,
    private readonly license: LicenseService,
  ) {
    this.portals = dataSource.getRepository(PortalEntity);
    this.logger = appLogger.child('event-binding');
  }

  /** Adds a step run after every bind of a portal (install, rebind). */
  addStep(step: (memberId: string) => Promise<unknown>): void {
    this.steps.push(step);
  }

  async bind(memberId: string): Promise<BindingReport> {
    const portal = this.bitrix24.operationsFor(memberId);
    // Without rest_offline_extended, event.offline.get refuses clear=0: drains can only be at-most-once.
    const offlineExtended = await portal.featureGet('rest_offline_extended');
    const deliveryMode: DeliveryMode = offlineExtended ? 'exactly-once' : 'at-most-once';

    // app.info: version and license; its LICENSE_FAMILY tells an Enterprise portal (5 requests/s,
    // 250 before blocking) from the others (2/50). A failure keeps what was known and does not
    // stop the binding.
    await this.license.read(memberId, 'bind', portal);

    const existing = await portal.eventGet();
    const report: BindingReport = { bound: [], alreadyBound: [], deliveryMode };
    const wanted = this.wantedBindings();
    for (const binding of wanted) {
      if (existing.some((handler) => this.matches(handler, binding))) {
        report.alreadyBound.push(binding.event);
        continue;
      }
      const outcome = await portal.eventBind({
        event: binding.event,
        ...(binding.offline
          ? { eventType: 'offline' as const }
          : { eventType: 'online' as const, handler: this.config.eventHandlerUrl }),
        ...(binding.options ? { options: binding.options } : {}),
      });
      (outcome === 'bound' ? report.bound : report.alreadyBound).push(binding.event);
    }

    const boundEvents: BoundEvent[] = wanted.map(({ event, offline }) => ({ event, offline }));
    await this.portals.update({ memberId }, { deliveryMode, boundEvents, boundAt: new Date() });
    this.logger.info(
      {
        memberId,
        bound: report.bound.length,
        alreadyBound: report.alreadyBound.length,
        deliveryMode,
      },
      'event bindings in place',
    );
    for (const step of this.steps) await step(memberId);
    return report;
  }

  private wantedBindings(): WantedBinding[] {
    const { offlineEvents, offlineMinTimeout } = this.config.bitrix24;
    return [
      { event: 'ONOFFLINEEVENT', offline: false, options: { minTimeout: offlineMinTimeout } },
      { event: 'ONAPPUNINSTALL', offline: false },
      // A new version brings a new application_token; a payment asks for an app.info re-read.
      { event: 'ONAPPUPDATE', offline: false },
      { event: 'ONAPPPAYMENT', offline: false },
      ...offlineEvents.map((event) => ({ event, offline: true })),
    ];
  }

  private matches(handler: BoundHandler, wanted: WantedBinding): boolean {
    if (handler.event.toUpperCase() !== wanted.event) return false;
    if (handler.offline === 1) {
      return wanted.offline && handler.connector_id === (this.config.bitrix24.authConnector ?? '');
    }
    return !wanted.offline && handler.handler === this.config.eventHandlerUrl;
  }
}
