/**
 * How big the next event.offline.get page of a drain pass is. Bitrix24 puts no maximum on `limit`
 * (contract §1); what bounds a page is the method's operating time: the seconds it ran, summed per
 * method over 10 minutes, past the portal's limit → 429 OPERATION_TIME_LIMIT until
 * `operating_reset_at` (docs/bitrix24/operating-time.md). So:
 *
 * - the first page of a pass is DRAIN_PAGE_SIZE; while pages come back full (a backlog), the next
 *   one is twice as big, up to DRAIN_MAX_PAGE_SIZE; a short page (the backlog is gone) brings the
 *   next back to DRAIN_PAGE_SIZE;
 * - a page's run time is predicted from seconds per row, learned from what each page added to the
 *   reported operating time or from its run time on Bitrix24's side, whichever is larger: a page
 *   is sized to run at most TARGET_PAGE_SECONDS, and to use at most half of what is left of the
 *   budget (BUDGET_SHARE of the limit minus the reported `time.operating`), so the remaining budget
 *   halves at worst and the limit itself is never reached;
 * - when the budget left cannot pay for a page of DRAIN_PAGE_SIZE, the pass stops calling and
 *   waits for the window to let go of its oldest minute (`operating_reset_at`) plus a second.
 *
 * Pure: the drain feeds it what each answer reported and asks it for the next step.
 */

/** Share of the operating limit the drain plans to use; the rest is margin for mispredictions. */
export const BUDGET_SHARE = 0.8;
/** A page is sized to run no longer than this on Bitrix24's side (one request may run 60 s). */
export const TARGET_PAGE_SECONDS = 5;
/** A page may use at most this share of the budget still left. */
const SHARE_OF_REMAINING = 0.5;
/** After the reset, this much more: the reset is a whole second on Bitrix24's clock. */
export const AFTER_RESET_MS = 1000;
/** The wait when Bitrix24 gave no (or a past) reset time: one minute slot of the window. */
export const UNKNOWN_RESET_WAIT_MS = 60_000;
/** Weight of the newest page in the learned seconds per row. */
const LEARNING_GAIN = 0.5;

export interface BacklogPagingSettings {
  /** DRAIN_PAGE_SIZE: the first page, the page after a short one, the smallest worth a request. */
  readonly pageSize: number;
  /** DRAIN_MAX_PAGE_SIZE: no page is larger (it bounds a page's memory). */
  readonly maxPageSize: number;
  /** BITRIX24_OPERATING_LIMIT_SECONDS: the portal's limit per method and 10 minutes. */
  readonly limitSeconds: number;
}

/** What one page's answer reported. */
export interface PageAnswer {
  /** The `limit` the page asked for. */
  readonly asked: number;
  /** Rows it returned. */
  readonly rows: number;
  /** Seconds the request ran on Bitrix24's side (`time.duration`), when reported. */
  readonly runSeconds?: number;
  /** The operating time used of the budget after this answer (`time.operating`), when reported. */
  readonly usedSeconds?: number;
  /** Milliseconds (our clock) until the window lets go of its oldest minute, when known. */
  readonly resetInMs?: number;
}

export type PagingStep =
  | {
      readonly kind: 'page';
      /** The `limit` of the next get. */
      readonly limit: number;
      /** Its predicted run time on Bitrix24's side, once seconds per row are known. */
      readonly expectedRunMs?: number;
    }
  | {
      readonly kind: 'defer';
      /** How long to wait before the next call (until the reset plus AFTER_RESET_MS). */
      readonly waitMs: number;
      readonly usedSeconds: number;
    };

/** The page-size steering of one drain pass. */
export class BacklogPaging {
  private secondsPerRow: number | undefined;
  private lastUsedSeconds: number | undefined;

  constructor(private readonly settings: BacklogPagingSettings) {
    if (settings.maxPageSize < settings.pageSize) {
      throw new RangeError('maxPageSize must be at least pageSize');
    }
  }

  /** The first page of a pass: DRAIN_PAGE_SIZE, nothing known yet of this pass's window. */
  first(): PagingStep {
    return { kind: 'page', limit: this.settings.pageSize };
  }

  /** Learned seconds per row (undefined until a page with rows was measured). */
  get learnedSecondsPerRow(): number | undefined {
    return this.secondsPerRow;
  }

  /** Takes in what a page's answer reported and decides the next step. */
  next(answer: PageAnswer): PagingStep {
    this.learn(answer);
    const { pageSize, maxPageSize, limitSeconds } = this.settings;
    let limit = answer.rows < answer.asked ? pageSize : Math.min(maxPageSize, answer.asked * 2);
    const perRow = this.secondsPerRow;
    if (perRow !== undefined && perRow > 0) {
      limit = Math.min(limit, Math.max(pageSize, Math.floor(TARGET_PAGE_SECONDS / perRow)));
    }
    const used = answer.usedSeconds;
    if (used !== undefined) {
      const remaining = limitSeconds * BUDGET_SHARE - used;
      const affordable =
        perRow !== undefined && perRow > 0
          ? Math.floor((remaining * SHARE_OF_REMAINING) / perRow)
          : remaining > 0
            ? limit
            : 0;
      if (affordable < pageSize) {
        return { kind: 'defer', waitMs: waitForReset(answer.resetInMs), usedSeconds: used };
      }
      limit = Math.min(limit, affordable);
    }
    return {
      kind: 'page',
      limit,
      ...(perRow !== undefined ? { expectedRunMs: Math.round(limit * perRow * 1000) } : {}),
    };
  }

  private learn(answer: PageAnswer): void {
    const previous = this.lastUsedSeconds;
    if (answer.usedSeconds !== undefined) this.lastUsedSeconds = answer.usedSeconds;
    if (answer.rows <= 0) return;
    // The window sheds whole minutes: a sum that fell says nothing about this page.
    const added =
      previous !== undefined && answer.usedSeconds !== undefined
        ? Math.max(0, answer.usedSeconds - previous)
        : 0;
    const cost = Math.max(added, answer.runSeconds ?? 0);
    if (cost <= 0) return;
    const sample = cost / answer.rows;
    this.secondsPerRow =
      this.secondsPerRow === undefined
        ? sample
        : this.secondsPerRow + LEARNING_GAIN * (sample - this.secondsPerRow);
  }
}

/** The wait before calling again once the budget is spent. */
export function waitForReset(resetInMs: number | undefined): number {
  return resetInMs !== undefined && resetInMs > 0
    ? Math.ceil(resetInMs) + AFTER_RESET_MS
    : UNKNOWN_RESET_WAIT_MS;
}
