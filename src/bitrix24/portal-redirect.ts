import { Bitrix24ApiError, TRANSPORT_ERROR_CODES } from './bitrix24-api.error';
import { originOf, type HttpRedirect } from './bitrix24-http';

/**
 * Where a redirected call is re-sent: the REST base of the new address (its origin and its path up
 * to `/rest`; the method is appended again). A redirect is followed once per call, to another
 * host, over http(s) and never from https down to http (the access token travels in the body);
 * anything else is an error that is not retried.
 */
export function redirectTarget(
  redirect: HttpRedirect,
  requestBaseUrl: string,
  alreadyRedirected: boolean,
  method: string,
): string | Bitrix24ApiError {
  const refuse = (code: string, description: string): Bitrix24ApiError =>
    new Bitrix24ApiError(code, description, redirect.status, method, 'caller');
  const asked = new URL(requestBaseUrl);
  if (alreadyRedirected) {
    return refuse(
      TRANSPORT_ERROR_CODES.redirectLoop,
      `a second redirect in one call (to ${originOf(redirect.location ?? '')}): not followed`,
    );
  }
  const location = redirect.location === null ? null : URL.parse(redirect.location);
  if (!location || (location.protocol !== 'https:' && location.protocol !== 'http:')) {
    return refuse(
      TRANSPORT_ERROR_CODES.redirect,
      `HTTP ${redirect.status} without an http(s) Location`,
    );
  }
  if (asked.protocol === 'https:' && location.protocol === 'http:') {
    return refuse(TRANSPORT_ERROR_CODES.redirect, 'a redirect from https to http: not followed');
  }
  if (location.host === asked.host) {
    // Not a domain move: a self-hosted portal with an expired license sends every request to
    // /bitrix/coupon_activation.php on its own host (b24phpsdk #372, PR #406).
    return refuse(
      TRANSPORT_ERROR_CODES.redirect,
      `a redirect within ${asked.host}, the host just asked (not a domain move): not followed`,
    );
  }
  const restPath = /^(.*?\/rest)(?:\/|$)/.exec(location.pathname);
  if (!restPath) {
    return refuse(
      TRANSPORT_ERROR_CODES.redirect,
      `a redirect to ${location.origin} outside its REST path: not followed`,
    );
  }
  return `${location.origin}${restPath[1]}`;
}
