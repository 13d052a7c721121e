import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { Bitrix24ApiError, TRANSPORT_ERROR_CODES, withoutSecret } from './bitrix24-api.error';
import { Bitrix24Http, redirectAsFailure } from './bitrix24-http';
import type { AppInfo } from './bitrix24.types';
import { classifyRestError } from './error-classification';

const METHOD = 'user.admin';

/**
 * One plain request to a portal with a token that is not the portal's stored one: whether the user
 * behind a freshly exchanged access token is an administrator (installs), and app.info for an
 * ONAPPUPDATE's token. Such a token is in no vault and its portal may not exist yet, so this is
 * one plain request: no bucket, no retry (the installer opens the app again), the same timeout
 * and error classification as every other call to Bitrix24.
 */
@Injectable()
export class InstallerRightsClient {
  private readonly checks: Counter<'outcome'>;

  constructor(
    private readonly http: Bitrix24Http,
    metrics: MetricsRegistry,
  ) {
    this.checks = metrics.counter(
      'bitrix24_installer_checks_total',
      'user.admin checks of installers, by outcome (admin, not_admin or the error code)',
      ['outcome'],
    );
  }

  /**
   * True only for an explicit `"result": true`. `clientEndpoint` must come from the OAuth server's
   * answer, never from the installation request. Failures throw a classified Bitrix24ApiError.
   */
  async isPortalAdmin(clientEndpoint: string, accessToken: string): Promise<boolean> {
    try {
      const result = await this.request(clientEndpoint, accessToken, METHOD);
      if (typeof result !== 'boolean') {
        throw this.failure(
          METHOD,
          accessToken,
          TRANSPORT_ERROR_CODES.invalidResponse,
          'an answer without a boolean result',
          200,
        );
      }
      this.checks.inc({ outcome: result ? 'admin' : 'not_admin' });
      return result;
    } catch (error) {
      if (error instanceof Bitrix24ApiError) this.checks.inc({ outcome: error.bitrixCode });
      throw error;
    }
  }

  /**
   * app.info with a token that is not (yet) the portal's own, such as ONAPPUPDATE's: the portal at
   * `clientEndpoint` (the stored one, never an address from the request) says whose app the token
   * belongs to and which version is installed. Failures throw a classified Bitrix24ApiError.
   */
  async appInfo(clientEndpoint: string, accessToken: string): Promise<AppInfo> {
    const result = await this.request(clientEndpoint, accessToken, 'app.info');
    if (typeof result !== 'object' || result === null || Array.isArray(result)) {
      throw this.failure(
        'app.info',
        accessToken,
        TRANSPORT_ERROR_CODES.invalidResponse,
        'an answer without an object result',
        200,
      );
    }
    return result as AppInfo;
  }

  private async request(
    clientEndpoint: string,
    accessToken: string,
    method: string,
  ): Promise<unknown> {
    const outcome = redirectAsFailure(
      await this.http.post(`${clientEndpoint.replace(/\/+$/, '')}/${method}`, {
        json: { auth: accessToken },
      }),
    );
    if (outcome.kind === 'transport_failure') {
      throw this.failure(method, accessToken, outcome.code, outcome.description, outcome.status);
    }
    const { body, status } = outcome;
    if (typeof body.error === 'string') {
      const description = typeof body.error_description === 'string' ? body.error_description : '';
      throw this.failure(method, accessToken, body.error, description, status);
    }
    if (!('result' in body)) {
      throw this.failure(
        method,
        accessToken,
        TRANSPORT_ERROR_CODES.invalidResponse,
        'an answer without result',
        status,
      );
    }
    return body.result;
  }

  private failure(
    method: string,
    accessToken: string,
    code: string,
    description: string,
    status: number,
  ): Bitrix24ApiError {
    return new Bitrix24ApiError(
      code,
      withoutSecret(description, accessToken),
      status,
      method,
      classifyRestError(code, status),
    );
  }
}
