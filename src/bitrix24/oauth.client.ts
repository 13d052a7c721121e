import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { AppConfig } from '../config/app-config';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { OAuthError, TRANSPORT_ERROR_CODES, withoutSecret } from './bitrix24-api.error';
import { Bitrix24Http, redirectAsFailure } from './bitrix24-http';
import type { OAuthTokenResponse } from './bitrix24.types';
import { oauthTokenUrl } from './oauth-server-choice';
import { classifyOAuthError } from './error-classification';

const REQUIRED_STRING_FIELDS = ['access_token', 'refresh_token', 'member_id', 'client_endpoint'];

/**
 * The OAuth server's token endpoint (contract §6). The client secret and the refresh token travel
 * in a POST form body, never in a URL that a proxy or access log could keep.
 */
@Injectable()
export class OAuthClient {
  private readonly exchanges: Counter<'outcome'>;

  constructor(
    private readonly config: AppConfig,
    private readonly http: Bitrix24Http,
    metrics: MetricsRegistry,
  ) {
    this.exchanges = metrics.counter(
      'bitrix24_oauth_refreshes_total',
      'Refresh-token exchanges at the OAuth server, by outcome (ok or the error code)',
      ['outcome'],
    );
  }

  /**
   * Spends `refreshToken` for a new token pair. Not retried here: the token is single-use, and a
   * second try after an answer we did not see would fail with invalid_grant anyway.
   *
   * `serverEndpoint` is the portal's stored OAuth server: used when it is a known one (Bitrix24's
   * west or east server, or BITRIX24_OAUTH_URL), else BITRIX24_OAUTH_URL. Installs pass none: an
   * install's refresh token is exchanged at BITRIX24_OAUTH_URL only, never at an address the
   * request named.
   */
  async refresh(
    refreshToken: string,
    options: { serverEndpoint?: string | null; signal?: AbortSignal } = {},
  ): Promise<OAuthTokenResponse> {
    if (refreshToken === '') {
      throw this.failure('invalid_request', 'no refresh token to exchange', 0);
    }
    const { clientId, clientSecret, oauthUrl } = this.config.bitrix24;
    const outcome = redirectAsFailure(
      await this.http.post(
        oauthTokenUrl(options.serverEndpoint, oauthUrl),
        {
          form: {
            grant_type: 'refresh_token',
            client_id: clientId,
            client_secret: clientSecret,
            refresh_token: refreshToken,
          },
        },
        options.signal,
      ),
    );
    if (outcome.kind === 'transport_failure') {
      throw this.failure(outcome.code, outcome.description, outcome.status);
    }
    const { body, status } = outcome;
    if (typeof body.error === 'string') {
      const description =
        typeof body.error_description === 'string' ? body.error_description : body.error;
      throw this.failure(body.error, withoutSecret(description, refreshToken), status);
    }
    if (
      status >= 400 ||
      REQUIRED_STRING_FIELDS.some((field) => typeof body[field] !== 'string' || body[field] === '')
    ) {
      throw this.failure(
        TRANSPORT_ERROR_CODES.invalidResponse,
        `HTTP ${status} without the expected token fields`,
        status,
      );
    }
    this.exchanges.inc({ outcome: 'ok' });
    return body as unknown as OAuthTokenResponse;
  }

  private failure(code: string, description: string, status: number): OAuthError {
    this.exchanges.inc({ outcome: code });
    return new OAuthError(code, description, status, classifyOAuthError(code, status));
  }
}
