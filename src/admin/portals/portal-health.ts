import type { TokenHealth } from './admin-portal.dto';

/** Bitrix24 refresh tokens live ~28 days; warn the operator this long before the end. */
const REFRESH_EXPIRY_WARNING_MS = 3 * 24 * 3600 * 1000;

export interface TokenTimestamps {
  present: boolean;
  accessExpiresAt: Date | null;
  refreshExpiresAt: Date | null;
}

/** One word for the state of a portal's token chain, worst condition first. */
export function tokenHealthOf(tokens: TokenTimestamps | undefined, now: Date): TokenHealth {
  if (!tokens?.present) return 'missing';
  const nowMs = now.getTime();
  if (tokens.refreshExpiresAt && tokens.refreshExpiresAt.getTime() <= nowMs) {
    return 'refresh_expired';
  }
  if (
    tokens.refreshExpiresAt &&
    tokens.refreshExpiresAt.getTime() - nowMs <= REFRESH_EXPIRY_WARNING_MS
  ) {
    return 'refresh_expiring';
  }
  if (!tokens.accessExpiresAt || tokens.accessExpiresAt.getTime() <= nowMs) return 'access_expired';
  return 'ok';
}

export interface DrainRequestTimestamps {
  drainRequestedAt: Date | null;
  lastDrainStartedAt: Date | null;
}

/** When the drain that is still waiting to start was requested; null when none waits. */
export function drainWaitingSince(state: DrainRequestTimestamps | undefined): Date | null {
  if (!state?.drainRequestedAt) return null;
  if (state.lastDrainStartedAt && state.lastDrainStartedAt >= state.drainRequestedAt) return null;
  return state.drainRequestedAt;
}

export function secondsSince(moment: Date | null, now: Date): number {
  if (!moment) return 0;
  return Math.max(0, Math.round((now.getTime() - moment.getTime()) / 1000));
}
