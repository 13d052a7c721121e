import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { EventBindingService } from '../portals/event-binding.service';
import { PortalEntity, type BoundPlacement } from '../portals/portal.entity';

/** A placement the vendor declares: where in Bitrix24 the app shows, under which title. */
export interface PlacementDeclaration {
  /** Bitrix24's placement code, e.g. CRM_DEAL_DETAIL_TAB. */
  readonly code: string;
  readonly title: string;
  readonly description?: string;
}

export const APP_PLACEMENTS = Symbol('APP_PLACEMENTS');

export interface PlacementReport {
  bound: string[];
  alreadyBound: string[];
  unbound: string[];
}

interface PlacementHandler {
  placement: string;
  handler: string;
}

/**
 * Keeps a portal's placements as declared: a diff of placement.get against the declarations, then
 * placement.bind for what is missing and placement.unbind for our handler on undeclared ones. Every
 * placement's handler is the app frame URL, so running it again binds nothing. The outcome is kept
 * on the portal (`bound_placements`, `placements_synced_at`) for the admin view.
 */
@Injectable()
export class PlacementSync {
  private readonly log: Logger;

  constructor(
    private readonly bitrix24: Bitrix24Client,
    private readonly config: AppConfig,
    @Optional() @Inject(APP_PLACEMENTS) private readonly declared: PlacementDeclaration[] | null,
    bindings: EventBindingService,
    appLogger: AppLogger,
    private readonly dataSource: DataSource,
  ) {
    this.log = appLogger.child('placements');
    bindings.addStep((memberId) => this.sync(memberId));
  }

  get declarations(): readonly PlacementDeclaration[] {
    return this.declared ?? [];
  }

  get handlerUrl(): string {
    return `${this.config.appBaseUrl.replace(/\/+$/, '')}/bitrix24/app`;
  }

  async sync(memberId: string): Promise<PlacementReport> {
    const report: PlacementReport = { bound: [], alreadyBound: [], unbound: [] };
    const declared = this.declarations;
    const portal = this.bitrix24.forPortal(memberId);
    const existing = (await portal.call<PlacementHandler[]>('placement.get')).result ?? [];
    const ours = existing.filter((bound) => bound.handler === this.handlerUrl);
    for (const placement of declared) {
      const code = placement.code.toUpperCase();
      if (ours.some((bound) => bound.placement.toUpperCase() === code)) {
        report.alreadyBound.push(code);
        continue;
      }
      await portal.call('placement.bind', {
        PLACEMENT: code,
        HANDLER: this.handlerUrl,
        TITLE: placement.title,
        ...(placement.description ? { DESCRIPTION: placement.description } : {}),
      });
      report.bound.push(code);
    }
    for (const bound of ours) {
      const code = bound.placement.toUpperCase();
      if (declared.some((placement) => placement.code.toUpperCase() === code)) continue;
      await portal.call('placement.unbind', { PLACEMENT: code, HANDLER: this.handlerUrl });
      report.unbound.push(code);
    }
    // What is bound now is every declaration: the admin view shows it.
    const boundPlacements: BoundPlacement[] = declared.map((placement) => ({
      code: placement.code.toUpperCase(),
      title: placement.title,
    }));
    await this.dataSource
      .getRepository(PortalEntity)
      .update({ memberId }, { boundPlacements, placementsSyncedAt: new Date() });
    if (declared.length > 0 || report.unbound.length > 0) {
      this.log.info({ memberId, ...report }, 'placements in place');
    }
    return report;
  }
}
