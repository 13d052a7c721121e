import { setTimeout as sleep } from 'node:timers/promises';
import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { OAuthError, PortalNotActiveError } from '../bitrix24/bitrix24-api.error';
import type { OAuthTokenResponse } from '../bitrix24/bitrix24.types';
import { OAuthClient } from '../bitrix24/oauth.client';
import { knownOAuthServer } from '../bitrix24/oauth-server-choice';
import { AppConfig } from '../config/app-config';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { PortalDomainMoves } from './domain-move.service';
import { accessExpiryOf, planStatusOf, PortalLocation, portalLocationOf } from './oauth-answer';
import { PlanStatus, PortalStatus } from './portal-status';
import { PortalStatusService } from './portal-status.service';
import { TokenCipher } from './token-cipher';
import { MemberIdMismatchError } from './token-vault.error';
import { LruMap } from '../common/lru-map';

/** An access token this close to its expiry is refreshed before use rather than sent to fail. */
const EXPIRY_MARGIN_MS = 60_000;
const DAY_MS = 86_400_000;
/** The width of portals.server_endpoint. */
const MAX_SERVER_ENDPOINT_LENGTH = 512;
/** Decrypted access tokens kept in memory at most (one per portal). */
export const TOKEN_CACHE_CAPACITY = 20_000;

/** How long a refreshed chain whose commit failed is retried on fresh connections. */
const STORE_RETRY_DEADLINE_MS = 60_000;
const STORE_FIRST_RETRY_DELAY_MS = 500;
const STORE_MAX_RETRY_DELAY_MS = 8_000;
/** One store attempt is a short UPDATE: it must not queue long behind another lock holder. */
const STORE_LOCK_TIMEOUT_MS = 2_000;
const STORE_STATEMENT_TIMEOUT_MS = 5_000;
/** At shutdown, how long the last store attempts may hold the exit. */
const SHUTDOWN_STORE_WAIT_MS = 3_000;

/** A stored chain as read, still encrypted. */
interface StoredChain {
  accessCiphertext: string;
  refreshCiphertext: string;
  accessExpiresAt: Date | null;
  generation: number;
  portalStatus: PortalStatus;
  /** The portal's stored OAuth server: its refreshes go there when it is a known one. */
  serverEndpoint: string | null;
}

interface UsableToken {
  accessToken: string;
  generation: number;
  accessExpiresAt: Date;
}

/** [access, refresh, accessExpiresAt, refreshExpiresAt, refreshedAt, keyId] */
type EncryptedColumns = [string, string, Date, Date, Date, string];

/** A chain the OAuth server issued in a refresh: the refresh token it replaces is spent. */
interface IssuedChain {
  memberId: string;
  /** The generation read under the row lock: the chain this one replaces. */
  replacesGeneration: number;
  accessToken: string;
  refreshToken: string;
  columns: EncryptedColumns;
  /** Null when the answer's client_endpoint is unusable: the stored one stays. */
  location: PortalLocation | null;
  /** The answer's server_endpoint when it names a known OAuth server; else the stored one stays. */
  serverEndpoint: string | null;
  planStatus: PlanStatus | null;
  /** Database time at which the refresh transaction began. */
  refreshStartedAt: Date;
  wasPaymentRequired: boolean;
}

/** An issued chain as written in the refresh transaction; generation null: the row moved on. */
interface WrittenChain {
  issued: IssuedChain;
  generation: number | null;
}

type StoreOutcome =
  { kind: 'stored'; generation: number } | { kind: 'superseded' } | { kind: 'failed' };

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
 *
 * Once the OAuth server has answered a refresh, the old refresh token is spent: a chain issued but
 * not committed (the connection dropped before COMMIT) is stored again on a fresh connection, and
 * meanwhile served from memory.
 */
@Injectable()
export class TokenVault implements BeforeApplicationShutdown {
  /** Bounded: a portal not called for a while reads its chain from the database again. */
  private readonly cache = new LruMap<string, UsableToken>(TOKEN_CACHE_CAPACITY);
  private readonly inFlight = new Map<string, Promise<UsableToken>>();
  /** Issued chains whose store is still being retried; their promises never reject. */
  private readonly pendingStores = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
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
    private readonly domainMoves: PortalDomainMoves,
  ) {
    this.log = appLogger.child('token-vault');
    this.refreshes = metrics.counter(
      'portal_token_refreshes_total',
      "Token refresh decisions: refreshed, reused (a sibling's fresh token), invalid_grant, failed, superseded (a re-install or uninstall replaced the chain before a refreshed one was stored), lost (refreshed but never stored)",
      ['outcome'],
    );
  }

  /** Chains still waiting to be stored get one last attempt before the database goes away. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    if (this.pendingStores.size === 0) return;
    await Promise.race([
      Promise.all(this.pendingStores.values()),
      sleep(SHUTDOWN_STORE_WAIT_MS, undefined, { ref: false }),
    ]);
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
    // Users' own chains from the app frame go with the portal's.
    await (manager ?? this.dataSource.manager).query(
      `DELETE FROM "portal_user_tokens" WHERE "member_id" = $1`,
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

  /**
   * One refresh per portal in flight in this process; later callers share its outcome. While a
   * refreshed chain still waits to be stored, the stored refresh token is a spent one: a refresh
   * waits for that store first.
   */
  private refreshOnce(memberId: string, staleGeneration: number | undefined): Promise<UsableToken> {
    const cached = this.cache.get(memberId);
    if (staleGeneration !== undefined && cached && cached.generation > staleGeneration) {
      return Promise.resolve(cached);
    }
    let running = this.inFlight.get(memberId);
    if (!running) {
      const storing = this.pendingStores.get(memberId);
      running = (
        storing
          ? storing.then(() => this.refreshUnderLock(memberId, staleGeneration))
          : this.refreshUnderLock(memberId, staleGeneration)
      ).finally(() => this.inFlight.delete(memberId));
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
    let statusBefore: PortalStatus | undefined;
    /** Set once the OAuth server has rotated the chain: from then on it must not be lost. */
    let issued: IssuedChain | undefined;
    let outcome: UsableToken | WrittenChain;
    try {
      outcome = await this.dataSource.transaction(async (manager) => {
        const refreshStartedAt = await this.boundRefreshTransaction(manager);
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
        statusBefore = chain.portalStatus;
        let tokens: OAuthTokenResponse;
        try {
          tokens = await this.oauth.refresh(refreshToken, {
            serverEndpoint: chain.serverEndpoint,
          });
        } catch (error) {
          if (error instanceof OAuthError && error.bitrixCode === 'invalid_grant') {
            rejectedGeneration = chain.generation;
          }
          throw error;
        }
        if (tokens.member_id !== memberId) {
          throw new MemberIdMismatchError(memberId, tokens.member_id);
        }
        issued = this.issuedChain(memberId, tokens, chain, refreshStartedAt);
        return { issued, generation: await this.writeIssued(manager, issued) };
      });
    } catch (error) {
      if (issued) return this.storeAfterFailedCommit(issued, error);
      if (rejectedGeneration !== undefined) {
        return this.afterInvalidGrant(memberId, rejectedGeneration, error as OAuthError);
      }
      return this.refreshFailed(memberId, error, statusBefore, startedAt);
    }
    if (!('issued' in outcome)) return outcome;
    if (outcome.generation === null) return this.superseded(outcome.issued);
    const usable = this.stored(outcome.issued, outcome.generation);
    await this.reactivate(outcome.issued, false);
    return usable;
  }

  private async refreshFailed(
    memberId: string,
    error: unknown,
    statusBefore: PortalStatus | undefined,
    startedAt: number,
  ): Promise<never> {
    this.refreshes.inc({ outcome: 'failed' });
    const unpaid = error instanceof OAuthError && error.bitrixCode === 'PAYMENT_REQUIRED';
    if (unpaid && statusBefore === 'payment_required') {
      // Still unpaid: the payment probe asks again later and reports each run in one line.
      this.log.debug({ memberId }, 'token refresh refused: payment still required');
      throw error;
    }
    if (unpaid) {
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

  /**
   * The refresh transaction holds the token row while the OAuth exchange runs. Bounds so that it
   * cannot hold it forever: a waiter gives up once the holder's exchange (bounded by the request
   * timeout) should long be over, and Postgres ends a session left idle in the transaction beyond
   * the exchange (a process that froze, a half-open connection), releasing the lock. Returns the
   * database time the transaction began.
   */
  private async boundRefreshTransaction(manager: EntityManager): Promise<Date> {
    const requestTimeoutMs = this.config.bitrix24.requestTimeoutMs;
    const lockTimeoutMs = 2 * requestTimeoutMs + 5000;
    const [row] = await manager.query<{ started_at: Date }[]>(
      `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true),
         set_config('idle_in_transaction_session_timeout', $3, true), now() AS "started_at"`,
      [String(lockTimeoutMs), String(lockTimeoutMs + 5000), String(requestTimeoutMs + 5000)],
    );
    return row.started_at;
  }

  /** What the vault keeps of an OAuth answer, read so that nothing about it can throw later. */
  private issuedChain(
    memberId: string,
    tokens: OAuthTokenResponse,
    replaced: StoredChain,
    refreshStartedAt: Date,
  ): IssuedChain {
    const location = portalLocationOf(tokens.client_endpoint);
    if (!location) {
      this.log.warn(
        { memberId },
        'the OAuth server answered a refresh with a client_endpoint that is not a usable URL: keeping the stored one',
      );
    }
    return {
      memberId,
      replacesGeneration: replaced.generation,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      columns: this.encryptedColumns(memberId, tokens, Date.now()),
      location,
      serverEndpoint: this.knownServerEndpoint(tokens.server_endpoint),
      planStatus: planStatusOf(tokens.status),
      refreshStartedAt,
      wasPaymentRequired: replaced.portalStatus === 'payment_required',
    };
  }

  /** A server_endpoint worth storing: one that later refreshes would be sent to. */
  private knownServerEndpoint(serverEndpoint: unknown): string | null {
    if (typeof serverEndpoint !== 'string' || serverEndpoint.length > MAX_SERVER_ENDPOINT_LENGTH) {
      return null;
    }
    return knownOAuthServer(serverEndpoint, this.config.bitrix24.oauthUrl) === null
      ? null
      : serverEndpoint;
  }

  /**
   * Stores an issued chain if the row still holds the chain it replaces; null when the row moved on
   * (a re-install stored another chain, an uninstall wiped it). The OAuth server is also the
   * authority on where the portal lives (a client_endpoint on another host is a domain move,
   * recorded in the portal's history), on its plan and on its OAuth server.
   */
  private async writeIssued(manager: EntityManager, issued: IssuedChain): Promise<number | null> {
    const [rows] = await manager.query<[{ generation: number }[], number]>(
      `UPDATE "portal_tokens" SET "access_token" = $3, "refresh_token" = $4,
         "access_expires_at" = $5, "refresh_expires_at" = $6, "refreshed_at" = $7, "key_id" = $8,
         "generation" = "generation" + 1
       WHERE "member_id" = $1 AND "generation" = $2 RETURNING "generation"`,
      [issued.memberId, issued.replacesGeneration, ...issued.columns],
    );
    if (rows.length === 0) return null;
    // SKIP LOCKED: a portal row locked by someone else (a re-install writing it anew) is left to
    // them, and we never wait for the portal row while holding the token row.
    // An UPDATE answers [rows, count]; the CTE's rows are read before the update.
    const [[moved]] = await manager.query<
      [{ status: PortalStatus; old_domain: string; new_domain: string }[], number]
    >(
      `WITH "before" AS (
         SELECT "member_id", "domain" FROM "portals"
         WHERE "member_id" = $1
           AND ("client_endpoint" IS DISTINCT FROM COALESCE($2::text, "client_endpoint")
             OR "plan_status" IS DISTINCT FROM COALESCE($4::char, "plan_status")
             OR "server_endpoint" IS DISTINCT FROM COALESCE($5::text, "server_endpoint"))
         FOR UPDATE SKIP LOCKED)
       UPDATE "portals" p SET "client_endpoint" = COALESCE($2::text, p."client_endpoint"),
         "domain" = COALESCE($3::text, p."domain"),
         "plan_status" = COALESCE($4::char, p."plan_status"),
         "server_endpoint" = COALESCE($5::text, p."server_endpoint"), "updated_at" = now()
       FROM "before" b WHERE p."member_id" = b."member_id"
       RETURNING p."status", b."domain" AS "old_domain", p."domain" AS "new_domain"`,
      [
        issued.memberId,
        issued.location?.clientEndpoint ?? null,
        issued.location?.domain ?? null,
        issued.planStatus,
        issued.serverEndpoint,
      ],
    );
    if (moved && moved.old_domain !== moved.new_domain) {
      await this.domainMoves.recordMove(
        manager,
        issued.memberId,
        moved.status,
        moved.old_domain,
        moved.new_domain,
      );
    }
    return rows[0].generation;
  }

  /** An issued chain is committed: it becomes the one callers use. */
  private stored(issued: IssuedChain, generation: number): UsableToken {
    const usable: UsableToken = {
      accessToken: issued.accessToken,
      generation,
      accessExpiresAt: issued.columns[2],
    };
    this.cache.set(issued.memberId, usable);
    this.refreshes.inc({ outcome: 'refreshed' });
    this.log.info({ memberId: issued.memberId, generation }, 'token chain refreshed');
    return usable;
  }

  /**
   * The OAuth server rotated the chain but our transaction did not commit (the connection dropped,
   * Postgres ended the session, a statement failed). The old refresh token is spent, so the issued
   * chain is the only live one: it is stored on a fresh connection. If that fails too, callers get
   * its access token from memory while further attempts go on in the background for a bounded time.
   */
  private async storeAfterFailedCommit(issued: IssuedChain, cause: unknown): Promise<UsableToken> {
    const { memberId } = issued;
    this.log.warn(
      { memberId, replacesGeneration: issued.replacesGeneration, reason: failureReason(cause) },
      'token refresh answered but not committed: storing the new chain on a fresh connection',
    );
    const first = await this.tryStore(issued, 1);
    if (first.kind === 'stored') {
      const usable = this.stored(issued, first.generation);
      await this.reactivate(issued, true);
      return usable;
    }
    if (first.kind === 'superseded') return this.superseded(issued);
    const usable: UsableToken = {
      accessToken: issued.accessToken,
      generation: issued.replacesGeneration + 1,
      accessExpiresAt: issued.columns[2],
    };
    this.cache.set(memberId, usable);
    this.pendingStores.set(
      memberId,
      this.keepStoring(issued).finally(() => this.pendingStores.delete(memberId)),
    );
    return usable;
  }

  /** Retries with backoff until stored, superseded, out of time, or the process stops. */
  private async keepStoring(issued: IssuedChain): Promise<void> {
    const startedAt = Date.now();
    const deadline = startedAt + STORE_RETRY_DEADLINE_MS;
    let delayMs = STORE_FIRST_RETRY_DELAY_MS;
    for (let attempt = 2; ; attempt++) {
      try {
        await sleep(Math.min(delayMs, Math.max(0, deadline - Date.now())), undefined, {
          signal: this.stopping.signal,
        });
      } catch {
        // Stopping: one last attempt right away.
      }
      delayMs = Math.min(2 * delayMs, STORE_MAX_RETRY_DELAY_MS);
      const outcome = await this.tryStore(issued, attempt);
      if (outcome.kind === 'stored') {
        this.stored(issued, outcome.generation);
        await this.reactivate(issued, true);
        return;
      }
      if (outcome.kind === 'superseded') {
        await this.superseded(issued).catch(() => undefined);
        return;
      }
      if (this.stopping.signal.aborted || Date.now() >= deadline) {
        this.refreshes.inc({ outcome: 'lost' });
        this.log.error(
          {
            memberId: issued.memberId,
            replacesGeneration: issued.replacesGeneration,
            attempts: attempt,
            durationMs: Date.now() - startedAt,
          },
          'REFRESHED TOKEN CHAIN LOST: the OAuth server rotated the chain but the new one could not be stored; the stored refresh token is spent and the portal will need a re-install once the access token held in memory expires',
        );
        return;
      }
    }
  }

  /** One attempt to store an issued chain on a connection of its own, with short timeouts. */
  private async tryStore(issued: IssuedChain, attempt: number): Promise<StoreOutcome> {
    try {
      return await this.dataSource.transaction(async (manager): Promise<StoreOutcome> => {
        await manager.query(
          `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
          [String(STORE_LOCK_TIMEOUT_MS), String(STORE_STATEMENT_TIMEOUT_MS)],
        );
        const generation = await this.writeIssued(manager, issued);
        if (generation !== null) return { kind: 'stored', generation };
        // Either the failed COMMIT went through after all (only its answer was lost), or the row
        // was replaced by a re-install or wiped by an uninstall.
        const [row] = await manager.query<{ refresh_token: string | null; generation: number }[]>(
          `SELECT "refresh_token", "generation" FROM "portal_tokens" WHERE "member_id" = $1`,
          [issued.memberId],
        );
        return row?.refresh_token && this.holdsRefreshToken(row.refresh_token, issued)
          ? { kind: 'stored', generation: row.generation }
          : { kind: 'superseded' };
      });
    } catch (error) {
      this.log.warn(
        { memberId: issued.memberId, attempt, reason: failureReason(error) },
        'refreshed token chain not stored yet',
      );
      return { kind: 'failed' };
    }
  }

  private holdsRefreshToken(ciphertext: string, issued: IssuedChain): boolean {
    try {
      return (
        this.cipher.decrypt(ciphertext, refreshContext(issued.memberId)) === issued.refreshToken
      );
    } catch {
      return false;
    }
  }

  /**
   * The row holds another chain than the one the issued chain replaces: a re-install or an
   * uninstall came first, and the issued chain belongs to a gone installation. Callers get what is
   * stored now (PortalNotActiveError when the chain was wiped).
   */
  private async superseded(issued: IssuedChain): Promise<UsableToken> {
    this.refreshes.inc({ outcome: 'superseded' });
    if (this.cache.get(issued.memberId)?.accessToken === issued.accessToken) {
      this.cache.delete(issued.memberId);
    }
    this.log.warn(
      { memberId: issued.memberId, replacesGeneration: issued.replacesGeneration },
      'token row replaced before the refreshed chain was stored: using the stored chain',
    );
    return this.remember(
      issued.memberId,
      await this.readChain(this.dataSource.manager, issued.memberId, false),
    );
  }

  /**
   * A stored refresh shows the installation alive and paid for: a portal that was payment_required
   * when it began is active again. After a failed commit, so is one marked needs_reinstall since it
   * began: a sibling spent the refresh token this refresh had already rotated, before the new chain
   * was stored, and took the rejection for a dead chain.
   */
  private async reactivate(issued: IssuedChain, afterFailedCommit: boolean): Promise<void> {
    if (!issued.wasPaymentRequired && !afterFailedCommit) return;
    const { memberId } = issued;
    try {
      await this.dataSource.transaction(async (manager) => {
        const [portal] = await manager.query<{ status: PortalStatus; changed_since: boolean }[]>(
          `SELECT "status", "status_changed_at" >= $2 AS "changed_since" FROM "portals"
           WHERE "member_id" = $1 FOR UPDATE`,
          [memberId, issued.refreshStartedAt],
        );
        if (portal?.status === 'payment_required' && issued.wasPaymentRequired) {
          await this.portalStatus.transition(
            memberId,
            'active',
            'token refresh succeeded again',
            manager,
          );
        } else if (
          portal?.status === 'needs_reinstall' &&
          portal.changed_since &&
          afterFailedCommit
        ) {
          await this.portalStatus.transition(
            memberId,
            'active',
            'the refresh token was rejected because a refresh had already rotated it; that refresh was stored',
            manager,
          );
        }
      });
    } catch (error) {
      this.log.warn(
        { memberId, to: 'active', code: error instanceof DomainError ? error.code : undefined },
        'portal status not changed',
      );
    }
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
        server_endpoint: string | null;
      }[]
    >(
      `SELECT t."access_token", t."refresh_token", t."access_expires_at", t."generation", p."status",
         p."server_endpoint"
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
      serverEndpoint: row.server_endpoint,
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

  private encryptedColumns(
    memberId: string,
    tokens: OAuthTokenResponse,
    now: number,
  ): EncryptedColumns {
    return [
      this.cipher.encrypt(tokens.access_token, accessContext(memberId)),
      this.cipher.encrypt(tokens.refresh_token, refreshContext(memberId)),
      accessExpiryOf(tokens, now),
      new Date(now + this.config.bitrix24.refreshTokenLifetimeDays * DAY_MS),
      new Date(now),
      this.cipher.currentKeyId,
    ];
  }
}

function isFresh(accessExpiresAt: Date): boolean {
  return accessExpiresAt.getTime() - EXPIRY_MARGIN_MS > Date.now();
}

/** A database failure in words, for the log: never the statement's parameters. */
function failureReason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}
