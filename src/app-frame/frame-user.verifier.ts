import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, Repository } from 'typeorm';
import { Bitrix24Http } from '../bitrix24/bitrix24-http';
import { PortalEntity } from '../portals/portal.entity';
import { EventVerifier } from '../webhooks/event-verifier.service';
import type { FrameRequest } from './frame-request';
import { LruMap } from '../common/lru-map';

/** A reload of the frame within this time costs no call to the portal. */
export const FRAME_USER_CACHE_MS = 60_000;
const MAX_CACHED_USERS = 10_000;

export interface FrameUser {
  readonly userId: number;
  readonly isAdmin: boolean;
  readonly name: string;
}

export type FrameVerification =
  | { readonly verified: true; readonly user: FrameUser }
  | { readonly verified: false; readonly reason: string };

/**
 * Proves a frame POST: its APPLICATION_TOKEN against the stored hash of an active portal (the
 * events' constant-time check), then the user behind AUTH_ID by asking that portal, at the
 * client_endpoint we stored at install (never an address from the request), `user.current` and
 * `user.admin` in one batch.
 */
@Injectable()
export class FrameUserVerifier {
  private readonly portals: Repository<PortalEntity>;
  private readonly users = new LruMap<string, { expiresAt: number; user: FrameUser }>(
    MAX_CACHED_USERS,
  );

  constructor(
    dataSource: DataSource,
    private readonly events: EventVerifier,
    private readonly http: Bitrix24Http,
  ) {
    this.portals = dataSource.getRepository(PortalEntity);
  }

  async verify(frame: FrameRequest): Promise<FrameVerification> {
    const check = await this.events.verify(frame.memberId, frame.applicationToken);
    if (!check.verified) return { verified: false, reason: check.reason };
    if (check.status !== 'active') return { verified: false, reason: 'portal_not_active' };

    const key = createHash('sha256')
      .update(`${frame.memberId}\n${frame.accessToken}`)
      .digest('hex');
    const cached = this.users.get(key);
    if (cached && cached.expiresAt > performance.now())
      return { verified: true, user: cached.user };

    const portal = await this.portals.findOne({
      select: { memberId: true, clientEndpoint: true },
      where: { memberId: frame.memberId },
    });
    if (!portal) return { verified: false, reason: 'unknown_portal' };
    const user = await this.askPortal(portal.clientEndpoint, frame.accessToken);
    if (user === null) return { verified: false, reason: 'user_not_confirmed' };

    this.users.set(key, { expiresAt: performance.now() + FRAME_USER_CACHE_MS, user });
    return { verified: true, user };
  }

  private async askPortal(clientEndpoint: string, accessToken: string): Promise<FrameUser | null> {
    const outcome = await this.http.post(`${clientEndpoint.replace(/\/+$/, '')}/batch`, {
      json: { halt: 1, cmd: { user: 'user.current', admin: 'user.admin' }, auth: accessToken },
    });
    if (outcome.kind !== 'answer' || outcome.status !== 200) return null;
    const result = outcome.body.result as { result?: Record<string, unknown> } | undefined;
    const current = result?.result?.user as Record<string, unknown> | undefined;
    const admin = result?.result?.admin;
    const id = Number(current?.ID);
    if (!Number.isInteger(id) || id <= 0) return null;
    const name = [current?.NAME, current?.LAST_NAME]
      .filter((part): part is string => typeof part === 'string' && part !== '')
      .join(' ');
    // Only an explicit true makes an admin.
    return { userId: id, isAdmin: admin === true, name };
  }
}
