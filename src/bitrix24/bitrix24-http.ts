import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { TRANSPORT_ERROR_CODES } from './bitrix24-api.error';

export type HttpOutcome =
  | { readonly kind: 'answer'; readonly status: number; readonly body: Record<string, unknown> }
  | {
      readonly kind: 'transport_failure';
      readonly code: string;
      readonly description: string;
      /** Set when an answer arrived but was not a JSON object. */
      readonly status: number;
    };

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

  /** `signal` aborts the request for a reason of the caller's (shutdown); its reason is thrown. */
  async post(url: string, body: HttpBody, signal?: AbortSignal): Promise<HttpOutcome> {
    signal?.throwIfAborted();
    // One controller per request, its timer cleared and its listener removed as soon as the answer
    // is read: AbortSignal.timeout() would keep the request's objects alive for the whole timeout.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.config.bitrix24.requestTimeoutMs);
    const forwardAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forwardAbort, { once: true });
    let status = 0;
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
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timedOut) {
        return {
          kind: 'transport_failure',
          code: TRANSPORT_ERROR_CODES.timeout,
          description: `no answer within ${this.config.bitrix24.requestTimeoutMs} ms`,
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
