import type { PortalStatus } from '../portals/portal-status';
import type { Bitrix24ErrorCategory } from './bitrix24-api.error';
import { TRANSPORT_ERROR_CODES } from './bitrix24-api.error';

const RETRYABLE_CODES = new Set<string>([
  'QUERY_LIMIT_EXCEEDED',
  'OVERLOAD_LIMIT',
  'OPERATION_TIME_LIMIT',
  'INTERNAL_SERVER_ERROR',
  TRANSPORT_ERROR_CODES.network,
  TRANSPORT_ERROR_CODES.timeout,
]);

/** Errors that a fresh access token can cure (contract §7). */
const AUTH_CODES = new Set<string>(['expired_token', 'invalid_token', 'NO_AUTH_FOUND']);

/** Codes Bitrix24 documents as request or permission problems: never retried, whatever the status. */
const CALLER_CODES = new Set<string>([
  'ACCESS_DENIED',
  'WRONG_AUTH_TYPE',
  'WRONG_LICENSE',
  'insufficient_scope',
  'user_access_error',
  'authorization_error',
  'ERROR_METHOD_NOT_FOUND',
  'ERROR_ARGUMENT',
  'ERROR_CORE',
  'ERROR_EVENT_NOT_FOUND',
  'ERROR_WRONG_HANDLER_URL',
  'ERROR_UNSUPPORTED_PROTOCOL',
  'ERROR_BATCH_LENGTH_EXCEEDED',
  'ERROR_BATCH_METHOD_NOT_ALLOWED',
  'CODE_EMPTY',
  // Repeating a refused redirect would only meet the same redirect again.
  TRANSPORT_ERROR_CODES.redirect,
  TRANSPORT_ERROR_CODES.redirectLoop,
]);

/** The installation is gone or unpaid: the status the portal moves to. */
const PORTAL_GONE_STATUS: Readonly<Record<string, PortalStatus>> = {
  // A deleted portal cannot reinstall anything; "uninstalled" says what an operator needs to know
  // (our app is no longer installed there) and leaves "deleted" to the operator's own offboarding.
  PORTAL_DELETED: 'uninstalled',
  APPLICATION_NOT_FOUND: 'uninstalled',
  PAYMENT_REQUIRED: 'payment_required',
};

/**
 * Classifies a REST failure by Bitrix24's `error` code; the HTTP status decides only for codes we
 * do not know (an unknown code on a 5xx is treated as a server fault, anything else as the caller's).
 */
export function classifyRestError(bitrixCode: string, httpStatus: number): Bitrix24ErrorCategory {
  if (RETRYABLE_CODES.has(bitrixCode)) return 'retryable';
  if (AUTH_CODES.has(bitrixCode)) return 'auth';
  if (bitrixCode in PORTAL_GONE_STATUS) return 'portal_gone';
  if (bitrixCode === TRANSPORT_ERROR_CODES.invalidResponse) {
    return httpStatus >= 500 || httpStatus === 0 ? 'retryable' : 'caller';
  }
  if (CALLER_CODES.has(bitrixCode)) return 'caller';
  return httpStatus >= 500 ? 'retryable' : 'caller';
}

/** Token-endpoint failures (contract §6): a dead chain, a wrong app, an unpaid app, or a fault. */
export function classifyOAuthError(bitrixCode: string, httpStatus: number): Bitrix24ErrorCategory {
  if (bitrixCode === 'invalid_grant') return 'auth';
  if (bitrixCode === 'PAYMENT_REQUIRED') return 'portal_gone';
  if (bitrixCode === TRANSPORT_ERROR_CODES.redirect) return 'caller';
  if (
    bitrixCode === TRANSPORT_ERROR_CODES.network ||
    bitrixCode === TRANSPORT_ERROR_CODES.timeout
  ) {
    return 'retryable';
  }
  return httpStatus >= 500 ? 'retryable' : 'caller';
}

/** The status a portal-gone error moves the portal to. */
export function statusForPortalGone(bitrixCode: string): PortalStatus {
  return PORTAL_GONE_STATUS[bitrixCode] ?? 'uninstalled';
}
