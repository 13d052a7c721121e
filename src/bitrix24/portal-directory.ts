import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import type { PortalStatus } from '../portals/portal-status';
import { PortalDomainMoves } from '../portals/domain-move.service';
import { PortalStatusService } from '../portals/portal-status.service';
import { PortalEntity } from '../portals/portal.entity';
import { PortalNotActiveError } from './bitrix24-api.error';
import { ENTERPRISE_RATE_LIMIT, type RateLimit } from './leaky-bucket';
import { LruMap } from '../common/lru-map';

/** What a call needs to know about its portal. */
export interface PortalTarget {
  readonly memberId: string;
  /** `client_endpoint` without trailing slashes: methods are appended as `/<method>`. */
  readonly restBaseUrl: string;
  readonly status: PortalStatus;
  readonly rateLimit: RateLimit;
}

/** app.info LICENSE_FAMILY of Enterprise plans (`ent`, as in `ent250`, `ent10000`). */
export function isEnterpriseFamily(family: string | null): boolean {
  return family !== null && family.toLowerCase().startsWith('ent');
}

/**
 * Portals we talk to: installed, and either confirmed (`active`) or still finishing their
 * install (`new`, which binds its events before Bitrix24's installFinish).
 */
const CALLABLE_STATUSES: ReadonlySet<PortalStatus> = new Set<PortalStatus>(['new', 'active']);

/**
 * A row read this recently is used without asking the database again. Status changes made in this
 * process apply at once (PortalStatusService tells us); one made by another replica is seen within
 * this time, and until then Bitrix24 itself refuses the calls of a gone installation.
 */
export const PORTAL_CACHE_TTL_MS = 5_000;
/** Portals whose row is kept at most: the least recently called ones are read again when needed. */
export const PORTAL_DIRECTORY_CAPACITY = 20_000;

interface Entry {
  readonly loadedAt: number;
  readonly target: Promise<PortalTarget | null>;
  /** A transition made in this process since the row was read. */
  status?: PortalStatus;
}

/** Endpoint, status and rate limit of each portal, cached briefly so the hot path skips the database. */
@Injectable()
export class PortalDirectory {
  private readonly entries = new LruMap<string, Entry>(PORTAL_DIRECTORY_CAPACITY);

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    portalStatus: PortalStatusService,
    domainMoves: PortalDomainMoves,
  ) {
    portalStatus.onTransition((memberId, status) => {
      const entry = this.entries.peek(memberId);
      if (entry) entry.status = status;
    });
    // The next call reads the new client_endpoint instead of going to the old address again.
    domainMoves.onMove((memberId) => this.forget(memberId));
  }

  /** Reads the portal again on its next call (its plan, limits or address changed). */
  forget(memberId: string): void {
    this.entries.delete(memberId);
  }

  /** The portal if calls may go to it; PortalNotActiveError otherwise. */
  async callableTarget(memberId: string): Promise<PortalTarget> {
    const entry = this.lookup(memberId);
    const target = await entry.target;
    if (!target) throw new PortalNotActiveError(memberId, 'unknown');
    const status = entry.status ?? target.status;
    if (!CALLABLE_STATUSES.has(status)) throw new PortalNotActiveError(memberId, status);
    return status === target.status ? target : { ...target, status };
  }

  private lookup(memberId: string): Entry {
    const now = Date.now();
    const cached = this.entries.get(memberId);
    if (cached && now - cached.loadedAt < PORTAL_CACHE_TTL_MS) return cached;
    const entry: Entry = { loadedAt: now, target: this.load(memberId) };
    this.entries.set(memberId, entry);
    // Neither a failed read nor an unknown portal is remembered: it may be installed any moment.
    const forget = (): void => {
      if (this.entries.peek(memberId) === entry) this.entries.delete(memberId);
    };
    entry.target.then((target) => {
      if (!target) forget();
    }, forget);
    return entry;
  }

  private async load(memberId: string): Promise<PortalTarget | null> {
    const portal = await this.dataSource.getRepository(PortalEntity).findOne({
      select: {
        memberId: true,
        clientEndpoint: true,
        status: true,
        rateLimitRps: true,
        rateLimitBurst: true,
        licenseFamily: true,
      },
      where: { memberId },
    });
    if (!portal) return null;
    // A per-portal override wins; else an Enterprise plan's own limit; else the configured one.
    const defaults = isEnterpriseFamily(portal.licenseFamily)
      ? ENTERPRISE_RATE_LIMIT
      : this.config.bitrix24.rateLimit;
    return {
      memberId,
      restBaseUrl: portal.clientEndpoint.replace(/\/+$/, ''),
      status: portal.status,
      rateLimit: {
        rps: portal.rateLimitRps ?? defaults.rps,
        burst: portal.rateLimitBurst ?? defaults.burst,
      },
    };
  }
}
