import type { OAuthTokenResponse } from '../bitrix24/bitrix24.types';
import { PLAN_STATUSES, PlanStatus } from './portal-status';

/**
 * Reading the fields of a token endpoint answer that the vault stores. Once the OAuth server has
 * answered, the old refresh token is spent, so nothing here may throw: a field we cannot use gets
 * a safe value instead of failing the write that keeps the new chain.
 */

/** What Bitrix24 issues; used when an answer does not say how long its access token lives. */
export const DEFAULT_ACCESS_LIFETIME_SECONDS = 3600;
/** Far beyond any lifetime Bitrix24 issues: a larger figure is garbage, not a promise. */
const MAX_ACCESS_LIFETIME_SECONDS = 86_400;
/** The widths of portals.client_endpoint and portals.domain. */
const MAX_CLIENT_ENDPOINT_LENGTH = 512;
const MAX_DOMAIN_LENGTH = 255;

/**
 * When the access token expires: `expires_in` (relative, so a skewed clock on either side neither
 * shortens nor stretches it), else the absolute `expires`, else the default lifetime.
 */
export function accessExpiryOf(
  answer: Pick<OAuthTokenResponse, 'expires_in' | 'expires'>,
  now: number,
): Date {
  const expiresIn = Number(answer.expires_in);
  if (Number.isFinite(expiresIn) && expiresIn > 0 && expiresIn <= MAX_ACCESS_LIFETIME_SECONDS) {
    return new Date(now + expiresIn * 1000);
  }
  const expiresAtMs = Number(answer.expires) * 1000;
  if (
    Number.isFinite(expiresAtMs) &&
    expiresAtMs > now &&
    expiresAtMs <= now + MAX_ACCESS_LIFETIME_SECONDS * 1000
  ) {
    return new Date(expiresAtMs);
  }
  return new Date(now + DEFAULT_ACCESS_LIFETIME_SECONDS * 1000);
}

export interface PortalLocation {
  clientEndpoint: string;
  /** The host of clientEndpoint. */
  domain: string;
}

/** The portal's REST address from an answer; null when it is not an http(s) URL we can store. */
export function portalLocationOf(clientEndpoint: unknown): PortalLocation | null {
  if (typeof clientEndpoint !== 'string' || clientEndpoint.length > MAX_CLIENT_ENDPOINT_LENGTH) {
    return null;
  }
  const url = URL.parse(clientEndpoint);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  if (url.host === '' || url.host.length > MAX_DOMAIN_LENGTH) return null;
  return { clientEndpoint, domain: url.host };
}

/** Bitrix24's plan letter, or null for anything else (the stored plan then stays). */
export function planStatusOf(status: unknown): PlanStatus | null {
  return (PLAN_STATUSES as readonly unknown[]).includes(status) ? (status as PlanStatus) : null;
}
