import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { Bitrix24UserNotAuthorizedError, OAuthError } from '../bitrix24/bitrix24-api.error';
import type { OAuthTokenResponse } from '../bitrix24/bitrix24.types';
import { OAuthClient } from '../bitrix24/oauth.client';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { accessExpiryOf } from './oauth-answer';
import { TokenCipher } from './token-cipher';
import { MemberIdMismatchError } from './token-vault.error';

/** An access token this close to its expiry is refreshed before use rather than sent to fail. */
const EXPIRY_MARGIN_MS = 60_000;
/** Access tokens live an hour; a frame that does not say how long its token lives gets that. */
const DEFAULT_ACCESS_LIFETIME_SECONDS = 3600;

/** A user's chain as the frame (or a refresh) carried it. */
export interface UserChain {
  readonly accessToken: string;
  /** Null when the frame carried no REFRESH_ID: the access token is all there is. */
  readonly refreshToken: string | null;
  readonly expiresInSeconds: number;
}

export interface StoredUserToken {
  readonly accessToken: string;
  readonly refreshToken: string | null;
  readonly accessExpiresAt: Date;
}

interface UserTokenRow {
  access_token: string;
  refresh_token: string | null;
  access_expires_at: Date;
  server_endpoint: string | null;
}

/** What a refresh under the lock ended in; a refusal is thrown once its transaction committed. */
type RefreshOutcome = { kind: 'token'; accessToken: string } | { kind: 'refused' };

const context = (memberId: string, userId: number): string => `${memberId}:user:${userId}`;

/**
 * Each user's own chain, as the verified app frame carried it, encrypted in `portal_user_tokens`,
 * and used by calls made as that user (`forPortal(memberId).asUser(userId)`). It never touches
 * `portal_tokens` nor the portal's status: a user's token must not replace the portal's chain, and a
 * user's refused chain concerns that user only.
 *
 * Refresh tokens are single-use: a user's chain is refreshed under `SELECT … FOR UPDATE` on the
 * user's row, and whoever waited for the lock re-reads the row and takes the access token a sibling
 * (or the user opening the app again) stored instead of spending the used refresh token. In this
 * process one refresh per user is in flight at a time.
 */
@Injectable()
export class UserTokenVault {
  private readonly inFlight = new Map<string, Promise<string>>();
  private readonly log: Logger;
  private readonly refreshes: Counter<'outcome'>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly cipher: TokenCipher,
    private readonly oauth: OAuthClient,
    private readonly config: AppConfig,
    appLogger: AppLogger,
    metrics: MetricsRegistry,
  ) {
    this.log = appLogger.child('user-token-vault');
    this.refreshes = metrics.counter(
      'portal_user_token_refreshes_total',
      "Refresh decisions for users' own chains: refreshed, reused (a sibling's fresh token), refused (the user must open the app again), failed",
      ['outcome'],
    );
  }

  /** Stores the chain a user's frame carried, replacing that user's previous one. */
  async store(memberId: string, userId: number, chain: UserChain, isAdmin = false): Promise<void> {
    const lifetimeSeconds = chain.expiresInSeconds || DEFAULT_ACCESS_LIFETIME_SECONDS;
    const key = context(memberId, userId);
    await this.dataSource.query(
      `INSERT INTO "portal_user_tokens"
         ("member_id", "user_id", "access_token", "refresh_token", "access_expires_at", "is_admin", "key_id", "updated_at")
       VALUES ($1, $2, $3, $4, $5, $6, $7, now())
       ON CONFLICT ("member_id", "user_id") DO UPDATE SET
         "access_token" = EXCLUDED."access_token", "refresh_token" = EXCLUDED."refresh_token",
         "access_expires_at" = EXCLUDED."access_expires_at", "is_admin" = EXCLUDED."is_admin",
         "key_id" = EXCLUDED."key_id", "updated_at" = now()`,
      [
        memberId,
        userId,
        this.cipher.encrypt(chain.accessToken, `${key}:access`),
        chain.refreshToken === null
          ? null
          : this.cipher.encrypt(chain.refreshToken, `${key}:refresh`),
        new Date(Date.now() + lifetimeSeconds * 1000),
        isAdmin,
        this.cipher.currentKeyId,
      ],
    );
  }

  /** The user's stored chain, decrypted; null when the user never opened the app. */
  async find(memberId: string, userId: number): Promise<StoredUserToken | null> {
    const row = await this.readRow(this.dataSource.manager, memberId, userId, false);
    return row ? this.decrypted(memberId, userId, row) : null;
  }

  /**
   * A usable access token of the user, refreshed first when it has expired (or is about to).
   * Bitrix24UserNotAuthorizedError when the user has no chain to use.
   */
  async accessTokenFor(memberId: string, userId: number): Promise<string> {
    const stored = await this.find(memberId, userId);
    if (!stored) throw new Bitrix24UserNotAuthorizedError(memberId, userId, 'never_opened');
    if (stored.accessExpiresAt.getTime() - EXPIRY_MARGIN_MS > Date.now()) {
      return stored.accessToken;
    }
    return this.refresh(memberId, userId, stored.accessToken);
  }

  /**
   * Refreshes the user's chain whose access token `staleAccessToken` is (Bitrix24 rejected it, or
   * it expired), unless the stored chain has moved past it already; answers the access token to use.
   */
  refresh(memberId: string, userId: number, staleAccessToken: string): Promise<string> {
    const key = context(memberId, userId);
    let running = this.inFlight.get(key);
    if (!running) {
      running = this.refreshUnderLock(memberId, userId, staleAccessToken).finally(() =>
        this.inFlight.delete(key),
      );
      this.inFlight.set(key, running);
    }
    return running;
  }

  /**
   * Drops the user's chain whose access token `staleAccessToken` is: it belongs to an installation
   * of the app that is gone. A chain the user stored since (opening the app again) stays.
   */
  async forget(memberId: string, userId: number, staleAccessToken: string): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const row = await this.readRow(manager, memberId, userId, true);
      if (!row || this.decrypted(memberId, userId, row).accessToken !== staleAccessToken) return;
      await manager.query(
        `DELETE FROM "portal_user_tokens" WHERE "member_id" = $1 AND "user_id" = $2`,
        [memberId, userId],
      );
    });
  }

  private async refreshUnderLock(
    memberId: string,
    userId: number,
    staleAccessToken: string,
  ): Promise<string> {
    let outcome: RefreshOutcome;
    try {
      outcome = await this.dataSource.transaction(async (manager): Promise<RefreshOutcome> => {
        await this.boundRefreshTransaction(manager);
        const row = await this.readRow(manager, memberId, userId, true);
        if (!row) throw new Bitrix24UserNotAuthorizedError(memberId, userId, 'never_opened');
        const stored = this.decrypted(memberId, userId, row);
        if (stored.accessToken !== staleAccessToken) {
          this.refreshes.inc({ outcome: 'reused' });
          return { kind: 'token', accessToken: stored.accessToken };
        }
        if (stored.refreshToken === null) return { kind: 'refused' };
        let tokens: OAuthTokenResponse;
        try {
          tokens = await this.oauth.refresh(stored.refreshToken, {
            serverEndpoint: row.server_endpoint,
          });
        } catch (error) {
          if (!(error instanceof OAuthError && error.bitrixCode === 'invalid_grant')) throw error;
          // The chain is dead: later calls are told at once, without asking the OAuth server.
          await manager.query(
            `UPDATE "portal_user_tokens" SET "refresh_token" = NULL, "updated_at" = now()
             WHERE "member_id" = $1 AND "user_id" = $2`,
            [memberId, userId],
          );
          return { kind: 'refused' };
        }
        if (tokens.member_id !== memberId) {
          throw new MemberIdMismatchError(memberId, tokens.member_id);
        }
        await this.writeRefreshed(manager, memberId, userId, tokens);
        this.refreshes.inc({ outcome: 'refreshed' });
        this.log.info({ memberId, userId }, "user's token chain refreshed");
        return { kind: 'token', accessToken: tokens.access_token };
      });
    } catch (error) {
      if (!(error instanceof Bitrix24UserNotAuthorizedError)) {
        this.refreshes.inc({ outcome: 'failed' });
        this.log.warn(
          {
            memberId,
            userId,
            bitrixCode: error instanceof OAuthError ? error.bitrixCode : undefined,
            reason: (error instanceof Error ? error.message : String(error)).slice(0, 200),
          },
          "user's token refresh failed",
        );
      }
      throw error;
    }
    if (outcome.kind === 'refused') {
      this.refreshes.inc({ outcome: 'refused' });
      this.log.info({ memberId, userId }, "user's chain refused: the user must open the app again");
      throw new Bitrix24UserNotAuthorizedError(memberId, userId, 'refresh_refused');
    }
    return outcome.accessToken;
  }

  private async writeRefreshed(
    manager: EntityManager,
    memberId: string,
    userId: number,
    tokens: OAuthTokenResponse,
  ): Promise<void> {
    const key = context(memberId, userId);
    await manager.query(
      `UPDATE "portal_user_tokens" SET "access_token" = $3, "refresh_token" = $4,
         "access_expires_at" = $5, "key_id" = $6, "updated_at" = now()
       WHERE "member_id" = $1 AND "user_id" = $2`,
      [
        memberId,
        userId,
        this.cipher.encrypt(tokens.access_token, `${key}:access`),
        this.cipher.encrypt(tokens.refresh_token, `${key}:refresh`),
        accessExpiryOf(tokens, Date.now()),
        this.cipher.currentKeyId,
      ],
    );
  }

  /**
   * The refresh holds the user's row while the OAuth exchange runs: a waiter gives up once the
   * holder's exchange (bounded by the request timeout) should long be over, and Postgres ends a
   * session left idle in the transaction, releasing the lock.
   */
  private async boundRefreshTransaction(manager: EntityManager): Promise<void> {
    const requestTimeoutMs = this.config.bitrix24.requestTimeoutMs;
    const lockTimeoutMs = 2 * requestTimeoutMs + 5000;
    await manager.query(
      `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true),
         set_config('idle_in_transaction_session_timeout', $3, true)`,
      [String(lockTimeoutMs), String(lockTimeoutMs + 5000), String(requestTimeoutMs + 5000)],
    );
  }

  private async readRow(
    manager: EntityManager,
    memberId: string,
    userId: number,
    forUpdate: boolean,
  ): Promise<UserTokenRow | undefined> {
    const rows = await manager.query<UserTokenRow[]>(
      `SELECT u."access_token", u."refresh_token", u."access_expires_at", p."server_endpoint"
       FROM "portal_user_tokens" u JOIN "portals" p ON p."member_id" = u."member_id"
       WHERE u."member_id" = $1 AND u."user_id" = $2${forUpdate ? ' FOR UPDATE OF u' : ''}`,
      [memberId, userId],
    );
    return rows[0];
  }

  private decrypted(memberId: string, userId: number, row: UserTokenRow): StoredUserToken {
    const key = context(memberId, userId);
    return {
      accessToken: this.cipher.decrypt(row.access_token, `${key}:access`),
      refreshToken:
        row.refresh_token === null
          ? null
          : this.cipher.decrypt(row.refresh_token, `${key}:refresh`),
      accessExpiresAt: row.access_expires_at,
    };
  }
}
