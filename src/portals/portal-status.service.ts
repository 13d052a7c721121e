import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { PortalStatus } from './portal-status';
import { PortalStatusChangeEntity } from './portal-status-change.entity';
import { PortalNotFoundError, PortalStatusTransitionError } from './portal-status.error';
import { PortalEntity } from './portal.entity';

/**
 * Every transition the status machine allows. `new` is an install not yet confirmed by Bitrix24's
 * installFinish or ONAPPINSTALL; a re-install may start from any state an installation can end in.
 */
export const ALLOWED_TRANSITIONS: Readonly<Record<PortalStatus, readonly PortalStatus[]>> = {
  new: ['active', 'needs_reinstall', 'payment_required', 'uninstalled', 'deleted'],
  active: ['new', 'needs_reinstall', 'payment_required', 'uninstalled', 'deleted'],
  needs_reinstall: ['new', 'active', 'uninstalled', 'deleted'],
  payment_required: ['new', 'active', 'needs_reinstall', 'uninstalled', 'deleted'],
  uninstalled: ['new', 'active', 'deleted'],
  deleted: ['new', 'active'],
};

const MAX_REASON_LENGTH = 500;

export type PortalStatusListener = (
  memberId: string,
  status: PortalStatus,
  from: PortalStatus,
) => void;

/** The one writer of `portals.status`: checks the transition, records it, logs it once. */
@Injectable()
export class PortalStatusService {
  private readonly listeners: PortalStatusListener[] = [];
  private readonly log: Logger;
  private readonly transitions: Counter<'to'>;

  constructor(
    private readonly dataSource: DataSource,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('portal-status');
    this.transitions = metrics.counter(
      'portal_status_transitions_total',
      'Portal status changes, by the status entered',
      ['to'],
    );
  }

  /**
   * Moves the portal to `to`, under a row lock so concurrent transitions serialise. Returns false
   * when it already is in `to`; throws for an unknown portal or a transition the machine forbids.
   * With `manager`, runs inside the caller's transaction.
   */
  async transition(
    memberId: string,
    to: PortalStatus,
    reason: string,
    manager?: EntityManager,
  ): Promise<boolean> {
    const shortReason = reason.slice(0, MAX_REASON_LENGTH);
    const run = async (
      entityManager: EntityManager,
    ): Promise<{ from: PortalStatus; changed: boolean }> => {
      const portal = await entityManager
        .getRepository(PortalEntity)
        .createQueryBuilder('portal')
        .select(['portal.memberId', 'portal.status'])
        .where('portal.memberId = :memberId', { memberId })
        .setLock('pessimistic_write')
        .getOne();
      if (!portal) throw new PortalNotFoundError(memberId);
      const from = portal.status;
      if (from === to) return { from, changed: false };
      if (!ALLOWED_TRANSITIONS[from].includes(to)) {
        throw new PortalStatusTransitionError(memberId, from, to);
      }
      await entityManager
        .createQueryBuilder()
        .update(PortalEntity)
        .set({
          status: to,
          statusReason: shortReason,
          statusChangedAt: () => 'now()',
          ...(to === 'uninstalled' ? { uninstalledAt: () => 'now()' } : {}),
        })
        .where('member_id = :memberId', { memberId })
        .execute();
      await entityManager
        .createQueryBuilder()
        .insert()
        .into(PortalStatusChangeEntity)
        .values({ memberId, fromStatus: from, toStatus: to, reason: shortReason })
        .execute();
      return { from, changed: true };
    };
    const { from, changed } = manager ? await run(manager) : await this.dataSource.transaction(run);
    if (!changed) return false;
    this.transitions.inc({ to });
    this.log.info({ memberId, from, to, reason: shortReason }, 'portal status changed');
    for (const listener of this.listeners) listener(memberId, to, from);
    return true;
  }

  /** In-process subscribers (the REST client's portal cache) hear of every transition made here. */
  onTransition(listener: PortalStatusListener): void {
    this.listeners.push(listener);
  }
}
