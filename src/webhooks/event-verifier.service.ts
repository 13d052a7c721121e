import { timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, Repository } from 'typeorm';
import { hashApplicationToken, InstallationService } from '../portals/installation.service';
import { PortalStatusService } from '../portals/portal-status.service';
import { PortalEntity } from '../portals/portal.entity';
import type { PortalStatus } from '../portals/portal-status';
import { LruMap } from '../common/lru-map';

/**
 * How long a portal's verification data is trusted in memory. Changes made by this process
 * (status transitions, a new application token) evict at once; a change made by another replica
 * is seen within this time.
 */
const CACHE_TTL_MS = 5_000;
/** Bounds memory when someone posts thousands of made-up member ids (those are cached too). */
const MAX_CACHED_PORTALS = 100_000;
/** Compared against when the portal is unknown, so every answer costs the same comparison. */
const NO_TOKEN_HASH = Buffer.alloc(32);

interface PortalCredentials {
  status: PortalStatus | null;
  tokenHash: Buffer | null;
}

interface CacheSlot {
  expiresAt: number;
  credentials: Promise<PortalCredentials>;
}

export type Verification =
  | { verified: true; status: PortalStatus }
  | { verified: false; reason: 'unknown_portal' | 'token_mismatch' };

/**
 * Checks an event's application_token against the stored SHA-256 in constant time. The stored
 * status and hash are cached per member_id so that, in the steady state, a notification costs
 * no database round trip.
 */
@Injectable()
export class EventVerifier {
  private readonly portals: Repository<PortalEntity>;
  private readonly slots = new LruMap<string, CacheSlot>(MAX_CACHED_PORTALS);

  constructor(
    dataSource: DataSource,
    installation: InstallationService,
    portalStatus: PortalStatusService,
  ) {
    this.portals = dataSource.getRepository(PortalEntity);
    installation.onInstallationChanged((memberId) => this.forget(memberId));
    portalStatus.onTransition((memberId) => this.forget(memberId));
  }

  async verify(memberId: string, applicationToken: string): Promise<Verification> {
    const { status, tokenHash } = await this.credentialsOf(memberId);
    const matches = timingSafeEqual(
      hashApplicationToken(applicationToken),
      tokenHash ?? NO_TOKEN_HASH,
    );
    if (status === null) return { verified: false, reason: 'unknown_portal' };
    if (!matches || tokenHash === null) return { verified: false, reason: 'token_mismatch' };
    return { verified: true, status };
  }

  forget(memberId: string): void {
    this.slots.delete(memberId);
  }

  private credentialsOf(memberId: string): Promise<PortalCredentials> {
    const now = performance.now();
    const cached = this.slots.get(memberId);
    if (cached && cached.expiresAt > now) return cached.credentials;

    const credentials = this.load(memberId);
    // Concurrent misses for one portal share this one query (and its failure, which is not kept).
    const slot: CacheSlot = { expiresAt: now + CACHE_TTL_MS, credentials };
    this.slots.set(memberId, slot);
    credentials.catch(() => {
      if (this.slots.peek(memberId) === slot) this.slots.delete(memberId);
    });
    return credentials;
  }

  private async load(memberId: string): Promise<PortalCredentials> {
    const portal = await this.portals.findOne({
      select: { memberId: true, status: true, applicationTokenHash: true },
      where: { memberId },
    });
    if (!portal) return { status: null, tokenHash: null };
    const hash = portal.applicationTokenHash;
    return { status: portal.status, tokenHash: hash && hash.length === 32 ? hash : null };
  }
}
