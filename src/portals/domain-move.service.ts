import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import type { PortalLocation } from './oauth-answer';
import type { PortalStatus } from './portal-status';

const MAX_REASON_LENGTH = 500;

export type DomainMoveListener = (memberId: string) => void;

/**
 * A portal that changed its domain (Bitrix24 `settings/how-to-call-rest-api/change-domen.md`):
 * `domain` and `client_endpoint` move to the new address and the move is written into the
 * portal's history (`portal_status_changes`, a row whose status does not change), in one
 * transaction. In-process listeners (the REST client's portal cache) hear of every move made here.
 */
@Injectable()
export class PortalDomainMoves {
  private readonly listeners: DomainMoveListener[] = [];
  private readonly log: Logger;
  private readonly moves: Counter;

  constructor(
    private readonly dataSource: DataSource,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('portal-domain');
    this.moves = metrics.counter(
      'portal_domain_moves_total',
      'Portals whose domain moved (a REST redirect followed, or a refresh answer naming another host)',
    );
  }

  /**
   * Moves the portal's REST address to `to`, under its row lock. Returns false when it is already
   * there (another caller moved it first) or the portal is unknown. With `manager`, runs inside the
   * caller's transaction.
   */
  async move(memberId: string, to: PortalLocation, manager?: EntityManager): Promise<boolean> {
    const run = async (entityManager: EntityManager): Promise<boolean> => {
      const [portal] = await entityManager.query<
        { domain: string; client_endpoint: string; status: PortalStatus }[]
      >(
        `SELECT "domain", "client_endpoint", "status" FROM "portals"
         WHERE "member_id" = $1 FOR UPDATE`,
        [memberId],
      );
      if (!portal) return false;
      if (portal.client_endpoint === to.clientEndpoint && portal.domain === to.domain) return false;
      await entityManager.query(
        `UPDATE "portals" SET "client_endpoint" = $2, "domain" = $3, "updated_at" = now()
         WHERE "member_id" = $1`,
        [memberId, to.clientEndpoint, to.domain],
      );
      if (portal.domain !== to.domain) {
        await this.writeHistory(entityManager, memberId, portal.status, portal.domain, to.domain);
      }
      return true;
    };
    const moved = manager ? await run(manager) : await this.dataSource.transaction(run);
    if (moved) this.notify(memberId);
    return moved;
  }

  /**
   * The history row of a move whose `portals` update the caller has just made in `manager`'s
   * transaction (the token vault, storing a refresh answer). The status stays what it is.
   */
  async recordMove(
    manager: EntityManager,
    memberId: string,
    status: PortalStatus,
    fromDomain: string,
    toDomain: string,
  ): Promise<void> {
    await this.writeHistory(manager, memberId, status, fromDomain, toDomain);
    this.notify(memberId);
  }

  onMove(listener: DomainMoveListener): void {
    this.listeners.push(listener);
  }

  private async writeHistory(
    manager: EntityManager,
    memberId: string,
    status: PortalStatus,
    fromDomain: string,
    toDomain: string,
  ): Promise<void> {
    await manager.query(
      `INSERT INTO "portal_status_changes" ("member_id", "from_status", "to_status", "reason")
       VALUES ($1, $2, $2, $3)`,
      [
        memberId,
        status,
        `domain moved from ${fromDomain} to ${toDomain}`.slice(0, MAX_REASON_LENGTH),
      ],
    );
    this.moves.inc();
    this.log.info({ memberId, fromDomain, toDomain }, 'portal domain moved');
  }

  private notify(memberId: string): void {
    for (const listener of this.listeners) listener(memberId);
  }
}
