import { DomainError, ErrorKind } from '../errors/domain-error';
import type { PortalStatus } from '../portals/portal-status';

/** The codes our own errors carry (Bitrix24's code is kept apart, in `bitrixCode`). */
export enum Bitrix24ErrorCode {
  ApiError = 'bitrix24_api_error',
  OAuthError = 'bitrix24_oauth_error',
  PortalNotActive = 'portal_not_active',
  ClientStopped = 'bitrix24_client_stopped',
  UserNotAuthorized = 'user_not_authorized',
}

/**
 * What the client does about a failure:
 * - `retryable`: back off and try again (rate limits, overload, 5xx, network, timeouts);
 * - `auth`: the token is not (or no longer) accepted: refresh once, then give up;
 * - `portal_gone`: the installation is gone or unpaid: the portal's status changes, traffic stops;
 * - `caller`: the request itself is wrong or not allowed: retrying changes nothing.
 */
export type Bitrix24ErrorCategory = 'retryable' | 'auth' | 'portal_gone' | 'caller';

/** Codes of our own for failures that never reached a Bitrix24 `error` field. */
export const TRANSPORT_ERROR_CODES = {
  network: 'NETWORK_ERROR',
  timeout: 'REQUEST_TIMEOUT',
  invalidResponse: 'INVALID_RESPONSE',
  /**
   * A 3xx answer that is not followed: the caller does not follow redirects, or it is no domain
   * move (no http(s) Location, the same host, outside the REST path, https to http).
   */
  redirect: 'REDIRECT',
  /** A second redirect in one call: the new address redirects again (a move not applied yet). */
  redirectLoop: 'REDIRECT_LOOP',
} as const;

function kindFor(category: Bitrix24ErrorCategory, httpStatus: number): ErrorKind {
  if (category === 'portal_gone') return 'conflict';
  if (category !== 'caller') return 'unavailable';
  if (httpStatus === 403) return 'forbidden';
  if (httpStatus === 404) return 'not_found';
  return 'invalid_input';
}

/** Bitrix24's descriptions are repeated in our messages: never with a token of ours in them. */
export function withoutSecret(text: string, secret: string): string {
  return secret === '' ? text : text.replaceAll(secret, '[redacted]');
}

/** Longest Bitrix24 description we repeat in a message: enough to understand, too short to dump a body. */
const MAX_DESCRIPTION_LENGTH = 300;

/** A failed Bitrix24 REST call, classified by Bitrix24's `error` code. */
export class Bitrix24ApiError extends DomainError {
  readonly kind: ErrorKind;

  constructor(
    /** Bitrix24's `error`, e.g. 'WRONG_LICENSE', or one of TRANSPORT_ERROR_CODES. */
    readonly bitrixCode: string,
    readonly description: string,
    /** 0 when no HTTP answer arrived (network failure, timeout). */
    readonly httpStatus: number,
    readonly method: string,
    readonly category: Bitrix24ErrorCategory,
    code: string = Bitrix24ErrorCode.ApiError,
  ) {
    const shortDescription = description.slice(0, MAX_DESCRIPTION_LENGTH);
    super(
      code,
      `Bitrix24 ${method} failed: ${bitrixCode}${shortDescription ? ` (${shortDescription})` : ''}`,
    );
    this.kind = kindFor(category, httpStatus);
  }
}

/** A failed exchange at the OAuth token endpoint (`invalid_grant`, `invalid_client`, `PAYMENT_REQUIRED`, …). */
export class OAuthError extends Bitrix24ApiError {
  constructor(
    bitrixCode: string,
    description: string,
    httpStatus: number,
    category: Bitrix24ErrorCategory,
  ) {
    super(
      bitrixCode,
      description,
      httpStatus,
      'oauth/token',
      category,
      Bitrix24ErrorCode.OAuthError,
    );
  }
}

/** No traffic goes to a portal that is not installed and usable; raised before any HTTP request. */
export class PortalNotActiveError extends DomainError {
  readonly kind = 'conflict';

  constructor(
    readonly memberId: string,
    /** The portal's status, or why it cannot be called when the status alone does not say. */
    readonly status: PortalStatus | 'unknown' | 'no_tokens',
  ) {
    super(
      Bitrix24ErrorCode.PortalNotActive,
      status === 'unknown'
        ? `Portal ${memberId} is not installed`
        : status === 'no_tokens'
          ? `Portal ${memberId} has no stored tokens`
          : `Portal ${memberId} is ${status}: no calls are made to it`,
    );
  }
}

/** The application is shutting down: waiting calls give up instead of holding the exit. */
export class Bitrix24ClientStoppedError extends DomainError {
  readonly kind = 'unavailable';

  constructor() {
    super(Bitrix24ErrorCode.ClientStopped, 'The Bitrix24 client is shutting down');
  }
}

const USER_NOT_AUTHORIZED_MESSAGES = {
  never_opened: (memberId: string, userId: number) =>
    `User ${userId} of portal ${memberId} has no stored authorization: the user must open the app again`,
  refresh_refused: (memberId: string, userId: number) =>
    `The authorization of user ${userId} of portal ${memberId} was refused: the user must open the app again`,
  installation_replaced: (memberId: string, userId: number) =>
    `The authorization of user ${userId} of portal ${memberId} belongs to an earlier installation of the app: the user must open the app again`,
};

/**
 * A call made as a user (`asUser(userId)`) has no chain of that user to use: the user never opened
 * the app on this portal, the OAuth server refused the user's refresh token, or the chain is from
 * an earlier installation of the app. Only the user can
 * cure it, by opening the app again; the portal's own chain and status are untouched.
 */
export class Bitrix24UserNotAuthorizedError extends DomainError {
  readonly kind = 'forbidden';

  constructor(
    readonly memberId: string,
    readonly userId: number,
    readonly reason: 'never_opened' | 'refresh_refused' | 'installation_replaced',
  ) {
    super(
      Bitrix24ErrorCode.UserNotAuthorized,
      USER_NOT_AUTHORIZED_MESSAGES[reason](memberId, userId),
    );
  }
}
