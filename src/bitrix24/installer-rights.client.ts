import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { Bitrix24ApiError, TRANSPORT_ERROR_CODES, withoutSecret } from './bitrix24-api.error';
import { Bitrix24Http, redirectAsFailure } from './bitrix24-http';
import { classifyRestError } from './error-classification';

const METHOD = 'user.admin';

/**
 * Asks a portal whether the user behind a freshly exchanged access token is one of its
 * administrators. Runs before a portal (and so its rate limit, token vault and status) exists, so
 * it is one plain request: no bucket, no retry (the installer opens the app again), the same
 * timeout and error classification as every other call to Bitrix24.
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
    const outcome = redirectAsFailure(
      await this.http.post(`${clientEndpoint.replace(/\/+$/, '')}/${METHOD}`, {
        json: { auth: accessToken },
      }),
    );
    const failure = (code: string, description: string, status: number): Bitrix24ApiError => {
      this.checks.inc({ outcome: code });
      return new Bitrix24ApiError(
        code,
        withoutSecret(description, accessToken),
        status,
        METHOD,
        classifyRestError(code, status),
      );
    };
    if (outcome.kind === 'transport_failure') {
      throw failure(outcome.code, outcome.description, outcome.status);
    }
    const { body, status } = outcome;
    if (typeof body.error === 'string') {
      const description = typeof body.error_description === 'string' ? body.error_description : '';
      throw failure(body.error, description, status);
    }
    if (typeof body.result !== 'boolean') {
      throw failure(
        TRANSPORT_ERROR_CODES.invalidResponse,
        'an answer without a boolean result',
        status,
      );
    }
    this.checks.inc({ outcome: body.result ? 'admin' : 'not_admin' });
    return body.result;
  }
}
