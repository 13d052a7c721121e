import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { OAuthError, PortalNotActiveError } from '../bitrix24/bitrix24-api.error';
import type { OAuthTokenResponse } from '../bitrix24/bitrix24.types';
import { OAuthClient } from '../bitrix24/oauth.client';
import { AppConfig } from '../config/app-config';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { PLAN_STATUSES, PortalStatus } from './portal-status';
import { PortalStatusService } from './portal-status.service';
import { TokenCipher } from './token-cipher';
import { MemberIdMismatchError } from './token-vault.error';

/** An access token this close to its expiry is refreshed before use rather than sent to fail. */
const EXPIRY_MARGIN_MS = 60_000;
const DAY_MS = 86_400_000;

/** A stored chain as read, still encrypted. */
interface StoredChain {
  accessCiphertext: string;
  refreshCiphertext: string;
  accessExpiresAt: Date | null;
  generation: number;
  portalStatus: PortalStatus;
}

interface UsableToken {
  accessToken: string;
  generation: number;
  accessExpiresAt: Date;
}

export interface TokenExpiry {
  accessExpiresAt: Date | null;
  refreshExpiresAt: Date | null;
  refreshedAt: Date | null;
}

const accessContext = (memberId: string): string => `${memberId}:access`;
const refreshContext = (memberId: string): string => `${memberId}:refresh`;

/**
 * Each portal's OAuth chain, encrypted in `portal_tokens`. Refresh tokens are single-use, so a
 * chain is refreshed by one process at a time: in this process one refresh per portal is in flight
 * and everyone else waits for it; across processes the refresher holds `SELECT … FOR UPDATE` on the
 * row, and whoever waited compares `generation` and takes the sibling's fresh token instead of
 * spending the used one. Decrypted access tokens are cached in memory per generation; a token that
 * Bitrix24 rejects sends the caller back here with that generation (`staleGeneration`).
 */
@Injectable()
export class TokenVault {
  private readonly cache = new Map<string, UsableToken>();
  private readonly inFlight = new Map<string, Promise<UsableToken>>();
  private readonly log: Logger;
  private readonly refreshes: Counter<'outcome'>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly cipher: TokenCipher,
    private readonly oauth: OAuthClient,
    private readonly portalStatus: PortalStatusService,
    private readonly config: AppConfig,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('token-vault');
    this.refreshes = metrics.counter(
      'portal_token_refreshes_total',
      "Token refresh decisions: refreshed, reused (a sibling's fresh token), invalid_grant, failed",
      ['outcome'],
    );
  }

  /** Stores a new chain (install, re-install), replacing whatever the portal had. */
  async storeChain(
    memberId: string,
    tokens: OAuthTokenResponse,
    manager?: EntityManager,
  ): Promise<void> {
    const now = Date.now();
    const rows = await (manager ?? this.dataSource.manager).query<{ generation: number }[]>(
      `INSERT INTO "portal_tokens" ("member_id", "access_token", "refresh_token", "access_expires_at",
         "refresh_expires_at", "refreshed_at", "generation", "key_id")
       VALUES ($1, $2, $3, $4, $5, $6, 1, $7)
       ON CONFLICT ("member_id") DO UPDATE SET
         "access_token" = EXCLUDED."access_token", "refresh_token" = EXCLUDED."refresh_token",
         "access_expires_at" = EXCLUDED."access_expires_at",
         "refresh_expires_at" = EXCLUDED."refresh_expires_at",
         "refreshed_at" = EXCLUDED."refreshed_at", "key_id" = EXCLUDED."key_id",
         "generation" = "portal_tokens"."generation" + 1
       RETURNING "generation"`,
      [memberId, ...this.encryptedColumns(memberId, tokens, now)],
    );
    // The caller's transaction may still roll back: let the next use read what was committed.
    this.cache.delete(memberId);
    this.log.info({ memberId, generation: rows[0].generation }, 'token chain stored');
  }

  /** A usable access token, refreshed first when it has expired (or is about to). */
  async accessTokenFor(memberId: string): Promise<{ accessToken: string; generation: number }> {
    const cached = this.cache.get(memberId);
    if (cached && isFresh(cached.accessExpiresAt)) {
      return { accessToken: cached.accessToken, generation: cached.generation };
    }
    const chain = await this.readChain(this.dataSource.manager, memberId, false);
    const usable =
      chain.accessExpiresAt && isFresh(chain.accessExpiresAt)
        ? this.remember(memberId, chain)
        : await this.refreshOnce(memberId, chain.generation);
    return { accessToken: usable.accessToken, generation: usable.generation };
  }

  /**
   * Refreshes the chain under the row lock. With `staleGeneration` (the generation whose access
   * token Bitrix24 rejected), a chain already rotated past it is reused instead of refreshed again.
   * Without it the refresh always happens (keep-alive, the operator's "refresh now").
   */
  async refresh(
    memberId: string,
    options: { staleGeneration?: number } = {},
  ): Promise<{ generation: number; accessExpiresAt: Date }> {
    const { generation, accessExpiresAt } = await this.refreshOnce(
      memberId,
      options.staleGeneration,
    );
    return { generation, accessExpiresAt };
  }

  /**
   * Whether a chain newer than `generation` is stored (a re-install handled by another replica);
   * if so, the cached token is dropped so the next call uses the stored one.
   */
  async hasNewerChain(memberId: string, generation: number): Promise<boolean> {
    const rows = await this.dataSource.query<{ generation: number }[]>(
      `SELECT "generation" FROM "portal_tokens"
       WHERE "member_id" = $1 AND "refresh_token" IS NOT NULL AND "generation" > $2`,
      [memberId, generation],
    );
    if (rows.length === 0) return false;
    this.cache.delete(memberId);
    return true;
  }

  /** Forgets the chain (uninstall, offboarding). The row stays, so waiters see a new generation. */
  async wipe(memberId: string, manager?: EntityManager): Promise<void> {
    await (manager ?? this.dataSource.manager).query(
      `UPDATE "portal_tokens" SET "access_token" = NULL, "refresh_token" = NULL,
         "access_expires_at" = NULL, "refresh_expires_at" = NULL, "key_id" = NULL,
         "generation" = "generation" + 1
       WHERE "member_id" = $1`,
      [memberId],
    );
    this.cache.delete(memberId);
    this.log.info({ memberId }, 'token chain wiped');
  }

  /** When the stored tokens run out; null when the portal has no chain. Never the tokens. */
  async expiry(memberId: string): Promise<TokenExpiry | null> {
    const rows = await this.dataSource.query<
      {
        access_expires_at: Date | null;
        refresh_expires_at: Date | null;
        refreshed_at: Date | null;
      }[]
    >(
      `SELECT "access_expires_at", "refresh_expires_at", "refreshed_at" FROM "portal_tokens"
       WHERE "member_id" = $1 AND "refresh_token" IS NOT NULL`,
      [memberId],
    );
    if (rows.length === 0) return null;
    return {
      accessExpiresAt: rows[0].access_expires_at,
      refreshExpiresAt: rows[0].refresh_expires_at,
      refreshedAt: rows[0].refreshed_at,
    };
  }

  /** One refresh per portal in flight in this process; later callers share its outcome. */
  private refreshOnce(memberId: string, staleGeneration: number | undefined): Promise<UsableToken> {
    const cached = this.cache.get(memberId);
    if (staleGeneration !== undefined && cached && cached.generation > staleGeneration) {
      return Promise.resolve(cached);
    }
    let running = this.inFlight.get(memberId);
    if (!running) {
      running = this.refreshUnderLock(memberId, staleGeneration).finally(() =>
        this.inFlight.delete(memberId),
      );
      this.inFlight.set(memberId, running);
    }
    return running;
  }

  private async refreshUnderLock(
    memberId: string,
    staleGeneration: number | undefined,
  ): Promise<UsableToken> {
    const startedAt = Date.now();
    let rejectedGeneration: number | undefined;
    let restoredFromPaymentRequired = false;
    try {
      const usable = await this.dataSource.transaction(async (manager) => {
        // The holder's HTTP exchange is bounded by the request timeout; never wait much beyond it.
        await manager.query(
          `SET LOCAL lock_timeout = ${2 * this.config.bitrix24.requestTimeoutMs + 5000}`,
        );
        const chain = await this.readChain(manager, memberId, true);
        if (staleGeneration !== undefined && chain.generation !== staleGeneration) {
          this.refreshes.inc({ outcome: 'reused' });
          this.log.debug(
            { memberId, generation: chain.generation, staleGeneration },
            'token chain already rotated by another caller: reusing it',
          );
          return this.remember(memberId, chain);
        }
        const refreshToken = this.cipher.decrypt(chain.refreshCiphertext, refreshContext(memberId));
        let tokens: OAuthTokenResponse;
        try {
          tokens = await this.oauth.refresh(refreshToken);
        } catch (error) {
          if (error instanceof OAuthError && error.bitrixCode === 'invalid_grant') {
            rejectedGeneration = chain.generation;
          }
          throw error;
        }
        if (tokens.member_id !== memberId) {
          throw new MemberIdMismatchError(memberId, tokens.member_id);
        }
        restoredFromPaymentRequired = chain.portalStatus === 'payment_required';
        return this.storeRefreshed(manager, memberId, tokens);
      });
      this.cache.set(memberId, usable);
      if (restoredFromPaymentRequired) {
        await this.transitionQuietly(memberId, 'active', 'token refresh succeeded again');
      }
      return usable;
    } catch (error) {
      if (rejectedGeneration !== undefined) {
        return this.afterInvalidGrant(memberId, rejectedGeneration, error as OAuthError);
      }
      this.refreshes.inc({ outcome: 'failed' });
      if (error instanceof OAuthError && error.bitrixCode === 'PAYMENT_REQUIRED') {
        await this.transitionQuietly(
          memberId,
          'payment_required',
          'the OAuth server answered PAYMENT_REQUIRED to a token refresh',
        );
      }
      this.log.warn(
        {
          memberId,
          durationMs: Date.now() - startedAt,
          code: error instanceof DomainError ? error.code : undefined,
          bitrixCode: error instanceof OAuthError ? error.bitrixCode : undefined,
        },
        'token refresh failed',
      );
      throw error;
    }
  }

  private async storeRefreshed(
    manager: EntityManager,
    memberId: string,
    tokens: OAuthTokenResponse,
  ): Promise<UsableToken> {
    const now = Date.now();
    const columns = this.encryptedColumns(memberId, tokens, now);
    const [[updated]] = await manager.query<[{ generation: number }[], number]>(
      `UPDATE "portal_tokens" SET "access_token" = $2, "refresh_token" = $3,
         "access_expires_at" = $4, "refresh_expires_at" = $5, "refreshed_at" = $6, "key_id" = $7,
         "generation" = "generation" + 1
       WHERE "member_id" = $1 RETURNING "generation"`,
      [memberId, ...columns],
    );
    // The OAuth server is the authority on where the portal lives and on its plan.
    const planStatus = (PLAN_STATUSES as readonly string[]).includes(tokens.status)
      ? tokens.status
      : null;
    // SKIP LOCKED: a portal row locked by someone else (a re-install writing it anew) is left to
    // them, and we never wait for the portal row while holding the token row.
    await manager.query(
      `UPDATE "portals" SET "client_endpoint" = $2, "domain" = $3,
         "plan_status" = COALESCE($4, "plan_status"), "updated_at" = now()
       WHERE "member_id" IN (
         SELECT "member_id" FROM "portals"
         WHERE "member_id" = $1
           AND ("client_endpoint" <> $2 OR ($4::char IS NOT NULL AND "plan_status" IS DISTINCT FROM $4))
         FOR UPDATE SKIP LOCKED)`,
      [memberId, tokens.client_endpoint, new URL(tokens.client_endpoint).host, planStatus],
    );
    this.refreshes.inc({ outcome: 'refreshed' });
    this.log.info({ memberId, generation: updated.generation }, 'token chain refreshed');
    return {
      accessToken: tokens.access_token,
      generation: updated.generation,
      accessExpiresAt: columns[2],
    };
  }

  /**
   * The OAuth server says the refresh token is dead. A sibling (or a re-install) may have stored a
   * new chain meanwhile: re-read, and only if the chain is still the one that failed does the portal
   * need a re-install. Read and status change happen in one transaction that first queues on the
   * portal row, the row a re-install locks before it stores its chain: a re-install that was
   * waiting for our refresh to let go of the token row commits before we look.
   */
  private async afterInvalidGrant(
    memberId: string,
    rejectedGeneration: number,
    error: OAuthError,
  ): Promise<UsableToken> {
    const newer = await this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT 1 FROM "portals" WHERE "member_id" = $1 FOR UPDATE', [memberId]);
      const chain = await this.readChain(manager, memberId, true).catch((readError: unknown) => {
        if (readError instanceof PortalNotActiveError) return null;
        throw readError;
      });
      if (chain && chain.generation !== rejectedGeneration) return chain;
      // A wiped chain means the portal was uninstalled meanwhile: nothing to re-install.
      if (chain) {
        await this.transitionQuietly(
          memberId,
          'needs_reinstall',
          'the OAuth server rejected the stored refresh token (invalid_grant)',
          manager,
        );
      }
      return null;
    });
    if (newer) {
      this.refreshes.inc({ outcome: 'reused' });
      this.log.info(
        { memberId, generation: newer.generation, rejectedGeneration },
        'refresh token was rejected but a newer chain is stored: using it',
      );
      return this.remember(memberId, newer);
    }
    this.refreshes.inc({ outcome: 'invalid_grant' });
    this.cache.delete(memberId);
    throw error;
  }

  /** A status change that the current state may already have made moot (uninstalled meanwhile). */
  private async transitionQuietly(
    memberId: string,
    to: PortalStatus,
    reason: string,
    manager?: EntityManager,
  ): Promise<void> {
    try {
      await this.portalStatus.transition(memberId, to, reason, manager);
    } catch (error) {
      this.log.warn(
        { memberId, to, code: error instanceof DomainError ? error.code : undefined },
        'portal status not changed',
      );
    }
  }

  private async readChain(
    manager: EntityManager,
    memberId: string,
    forUpdate: boolean,
  ): Promise<StoredChain> {
    const rows = await manager.query<
      {
        access_token: string | null;
        refresh_token: string | null;
        access_expires_at: Date | null;
        generation: number;
        status: PortalStatus;
      }[]
    >(
      `SELECT t."access_token", t."refresh_token", t."access_expires_at", t."generation", p."status"
       FROM "portal_tokens" t JOIN "portals" p ON p."member_id" = t."member_id"
       WHERE t."member_id" = $1${forUpdate ? ' FOR UPDATE OF t' : ''}`,
      [memberId],
    );
    const row = rows[0];
    if (!row?.refresh_token || !row.access_token) {
      throw new PortalNotActiveError(memberId, 'no_tokens');
    }
    return {
      accessCiphertext: row.access_token,
      refreshCiphertext: row.refresh_token,
      accessExpiresAt: row.access_expires_at,
      generation: row.generation,
      portalStatus: row.status,
    };
  }

  private remember(memberId: string, chain: StoredChain): UsableToken {
    const usable: UsableToken = {
      accessToken: this.cipher.decrypt(chain.accessCiphertext, accessContext(memberId)),
      generation: chain.generation,
      accessExpiresAt: chain.accessExpiresAt ?? new Date(0),
    };
    this.cache.set(memberId, usable);
    return usable;
  }

  /** [access, refresh, accessExpiresAt, refreshExpiresAt, refreshedAt, keyId] */
  private encryptedColumns(
    memberId: string,
    tokens: OAuthTokenResponse,
    now: number,
  ): [string, string, Date, Date, Date, string] {
    // expires_in is relative, so a skewed clock on either side does not shorten or stretch it.
    const accessExpiresAt =
      tokens.expires_in > 0
        ? new Date(now + tokens.expires_in * 1000)
        : new Date(tokens.expires * 1000);
    return [
      this.cipher.encrypt(tokens.access_token, accessContext(memberId)),
      this.cipher.encrypt(tokens.refresh_token, refreshContext(memberId)),
      accessExpiresAt,
      new Date(now + this.config.bitrix24.refreshTokenLifetimeDays * DAY_MS),
      new Date(now),
      this.cipher.currentKeyId,
    ];
  }
}

function isFresh(accessExpiresAt: Date): boolean {
  return accessExpiresAt.getTime() - EXPIRY_MARGIN_MS > Date.now();
}
