import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { OAuthError } from '../bitrix24/bitrix24-api.error';
import { AppConfig } from '../config/app-config';
import { DomainError } from '../errors/domain-error';
import { AppLogger } from '../logging/app-logger';
import { TokenVault } from './token-vault.service';

/** A chain is refreshed once less than this share of its estimated lifetime is left. */
const REFRESH_WHEN_LIFETIME_LEFT = 0.25;
/** At most this many chains per run, the most urgent first: the rest wait for the next runs. */
export const KEEP_ALIVE_BATCH = 100;
/** At most this many payment_required portals per probe run; the next runs go on from there. */
export const PAYMENT_PROBE_BATCH = 50;

export interface KeepAliveReport {
  due: number;
  refreshed: number;
  failed: number;
}

export interface PaymentProbeReport {
  probed: number;
  /** Refreshed: paid for again, and active. */
  recovered: number;
  /** Still answered PAYMENT_REQUIRED. */
  unpaid: number;
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
  /** The last member_id the payment probe looked at: each run goes on after it, round the fleet. */
  private probeCursor = '';

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
    await this.spreadOver(due, options, async (chain) => {
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
    });
    if (report.due > 0) this.log.info(report, 'keep-alive run finished');
    return report;
  }

  /**
   * A payment_required portal gets no traffic, so nothing would notice that the customer paid.
   * This tries a refresh for a bounded batch of them, spread evenly over `spreadMs`: the vault
   * moves a portal whose refresh succeeds back to active; one still unpaid stays as it is.
   */
  async probePaymentRequired(
    options: { spreadMs?: number; signal?: AbortSignal } = {},
  ): Promise<PaymentProbeReport> {
    const unpaid = await this.dataSource.query<{ member_id: string; generation: number }[]>(
      `SELECT p."member_id", t."generation" FROM "portals" p
       JOIN "portal_tokens" t ON t."member_id" = p."member_id"
       WHERE p."status" = 'payment_required' AND t."refresh_token" IS NOT NULL
         AND p."member_id" > $1
       ORDER BY p."member_id" LIMIT $2`,
      [this.probeCursor, PAYMENT_PROBE_BATCH],
    );
    this.probeCursor =
      unpaid.length < PAYMENT_PROBE_BATCH ? '' : unpaid[unpaid.length - 1].member_id;
    const report: PaymentProbeReport = { probed: 0, recovered: 0, unpaid: 0, failed: 0 };
    await this.spreadOver(unpaid, options, async (portal) => {
      report.probed += 1;
      try {
        // A chain a sibling refreshed since we looked (its probe, a re-install) is left alone.
        await this.vault.refresh(portal.member_id, { staleGeneration: portal.generation });
        report.recovered += 1;
      } catch (error) {
        if (error instanceof OAuthError && error.bitrixCode === 'PAYMENT_REQUIRED') {
          report.unpaid += 1;
          return;
        }
        report.failed += 1;
        this.log.warn(
          {
            memberId: portal.member_id,
            code: error instanceof DomainError ? error.code : undefined,
          },
          'payment probe refresh failed',
        );
      }
    });
    if (report.recovered > 0 || report.failed > 0) {
      this.log.info(report, 'payment probe run finished');
    } else if (report.probed > 0) {
      this.log.debug(report, 'payment probe run finished');
    }
    return report;
  }

  /**
   * Works through `items` one at a time, evenly spread over `spreadMs`; stops before the next
   * item once `signal` aborts.
   */
  private async spreadOver<T>(
    items: readonly T[],
    options: { spreadMs?: number; signal?: AbortSignal },
    work: (item: T) => Promise<void>,
  ): Promise<void> {
    const gapMs = items.length > 1 ? (options.spreadMs ?? 0) / items.length : 0;
    for (const [index, item] of items.entries()) {
      if (options.signal?.aborted) return;
      if (index > 0 && gapMs > 0) {
        try {
          await sleep(gapMs, undefined, { signal: options.signal });
        } catch {
          return;
        }
      }
      await work(item);
    }
  }
}
