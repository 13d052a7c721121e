import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { TokenVault } from './token-vault.service';

/** A chain is refreshed once less than this share of its estimated lifetime is left. */
const REFRESH_WHEN_LIFETIME_LEFT = 0.25;
/** At most this many chains per run, the most urgent first: the rest wait for the next runs. */
export const KEEP_ALIVE_BATCH = 100;

export interface KeepAliveReport {
  due: number;
  refreshed: number;
  failed: number;
}

/**
 * Refresh tokens die after REFRESH_TOKEN_LIFETIME_DAYS without use; a portal whose events stopped
 * for that long would need a re-install. This refreshes such chains ahead of time, one after the
 * other and spaced out, never the whole fleet at once.
 */
@Injectable()
export class TokenKeepAlive {
  private readonly log: Logger;

  constructor(
    private readonly dataSource: DataSource,
    private readonly vault: TokenVault,
    private readonly config: AppConfig,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('token-keep-alive');
  }

  /** Refreshes the chains that are due, spread evenly over `spreadMs`; `signal` stops between portals. */
  async refreshDueChains(
    options: { spreadMs?: number; signal?: AbortSignal } = {},
  ): Promise<KeepAliveReport> {
    const windowMs =
      this.config.bitrix24.refreshTokenLifetimeDays * 86_400_000 * REFRESH_WHEN_LIFETIME_LEFT;
    const due = await this.dataSource.query<{ member_id: string; generation: number }[]>(
      `SELECT t."member_id", t."generation" FROM "portal_tokens" t
       JOIN "portals" p ON p."member_id" = t."member_id"
       WHERE p."status" IN ('new', 'active') AND t."refresh_token" IS NOT NULL
         AND t."refresh_expires_at" < now() + make_interval(secs => $1)
       ORDER BY t."refresh_expires_at" LIMIT $2`,
      [windowMs / 1000, KEEP_ALIVE_BATCH],
    );
    const report: KeepAliveReport = { due: due.length, refreshed: 0, failed: 0 };
    const gapMs = due.length > 1 ? (options.spreadMs ?? 0) / due.length : 0;
    for (const [index, chain] of due.entries()) {
      if (options.signal?.aborted) break;
      if (index > 0 && gapMs > 0) {
        try {
          await sleep(gapMs, undefined, { signal: options.signal });
        } catch {
          break;
        }
      }
      try {
        // A chain a sibling refreshed since we looked is fresh already and is left alone.
        await this.vault.refresh(chain.member_id, { staleGeneration: chain.generation });
        report.refreshed += 1;
      } catch (error) {
        report.failed += 1;
        this.log.warn(
          {
            memberId: chain.member_id,
            code: error instanceof DomainError ? error.code : undefined,
          },
          'keep-alive refresh failed',
        );
      }
    }
    if (report.due > 0) this.log.info(report, 'keep-alive run finished');
    return report;
  }
}
