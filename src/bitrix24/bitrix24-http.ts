import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { TRANSPORT_ERROR_CODES } from './bitrix24-api.error';

export interface HttpAnswer {
  readonly kind: 'answer';
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface HttpTransportFailure {
  readonly kind: 'transport_failure';
  readonly code: string;
  readonly description: string;
  /** Set when an answer arrived but was not a JSON object (or was a redirect not followed). */
  readonly status: number;
}

/**
 * A 3xx answer. Redirects are never followed by fetch: it would turn the POST into a GET without
 * its body, and follow a loop up to its own limit. `location` is absolute (resolved against the
 * request's URL), or null when the answer named none we could parse.
 */
export interface HttpRedirect {
  readonly kind: 'redirect';
  readonly status: number;
  readonly location: string | null;
}

export type HttpOutcome = HttpAnswer | HttpTransportFailure | HttpRedirect;

/** For callers that do not follow redirects: a redirect is a transport failure of its own code. */
export function redirectAsFailure(outcome: HttpOutcome): HttpAnswer | HttpTransportFailure {
  if (outcome.kind !== 'redirect') return outcome;
  return {
    kind: 'transport_failure',
    code: TRANSPORT_ERROR_CODES.redirect,
    description: `HTTP ${outcome.status} redirect${outcome.location === null ? ' without a usable Location' : ` to ${originOf(outcome.location)}`}, not followed`,
    status: outcome.status,
  };
}

/** A URL's origin only: the path and query of a Location are not repeated in messages. */
export function originOf(url: string): string {
  return URL.parse(url)?.origin ?? 'an unparsable address';
}

export type HttpBody =
  { readonly json: Record<string, unknown> } | { readonly form: Record<string, string> };

/**
 * The one place that puts bytes on the wire to Bitrix24: POST with a timeout, JSON answers.
 * Transport failures come back as values so the OAuth and REST clients classify them their way.
 * Descriptions name the failure (connection refused, timeout), never the URL's query or the body.
 */
@Injectable()
export class Bitrix24Http {
  constructor(private readonly config: AppConfig) {}

  /**
   * `signal` aborts the request for a reason of the caller's (shutdown); its reason is thrown.
   * `timeoutMs` replaces BITRIX24_REQUEST_TIMEOUT_MS for this request.
   */
  async post(
    url: string,
    body: HttpBody,
    signal?: AbortSignal,
    timeoutMs = this.config.bitrix24.requestTimeoutMs,
  ): Promise<HttpOutcome> {
    signal?.throwIfAborted();
    // One controller per request, its timer cleared and its listener removed as soon as the answer
    // is read: AbortSignal.timeout() would keep the request's objects alive for the whole timeout.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const forwardAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forwardAbort, { once: true });
    let status = 0;
    let location: string | null;
    let text: string;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers:
          'json' in body
            ? { 'content-type': 'application/json', accept: 'application/json' }
            : { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body:
          'json' in body ? JSON.stringify(body.json) : new URLSearchParams(body.form).toString(),
        signal: controller.signal,
        redirect: 'manual',
      });
      status = response.status;
      const header = response.headers.get('location');
      location = header === null ? null : (URL.parse(header, url)?.href ?? null);
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timedOut) {
        return {
          kind: 'transport_failure',
          code: TRANSPORT_ERROR_CODES.timeout,
          description: `no answer within ${timeoutMs} ms`,
          status,
        };
      }
      return {
        kind: 'transport_failure',
        code: TRANSPORT_ERROR_CODES.network,
        description: networkFailureDescription(error),
        status,
      };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forwardAbort);
    }
    if (status >= 300 && status < 400) return { kind: 'redirect', status, location };
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        return { kind: 'answer', status, body: parsed as Record<string, unknown> };
      }
    } catch {
      // Not JSON: a proxy's error page or a truncated answer; reported below without its content.
    }
    return {
      kind: 'transport_failure',
      code: TRANSPORT_ERROR_CODES.invalidResponse,
      description: `HTTP ${status} with a body that is not a JSON object`,
      status,
    };
  }
}

/** undici reports "fetch failed" and hides the reason (ECONNREFUSED, ECONNRESET…) in `cause`. */
function networkFailureDescription(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : 'network failure';
}
