import type { Emulator } from '../emulator';
import type { Portal } from '../portals/portal';
import { phpString } from './php-values';
import { restErrors } from './rest-error';
import type { Caller } from './rest-method';

/**
 * Resolves the caller of a REST request from its token (`auth`, `access_token` or a Bearer header),
 * answering the contract's 401s in Bitrix's order of checks.
 */
export function authenticate(
  emulator: Emulator,
  portal: Portal,
  params: Readonly<Record<string, unknown>>,
  authorizationHeader: string | undefined,
): Caller {
  const token =
    phpString(params.auth) || phpString(params.access_token) || bearerToken(authorizationHeader);
  if (token === '') throw restErrors.noAuthFound();
  const record = emulator.tokens.findAccessToken(token);
  if (record === undefined) throw restErrors.invalidToken();
  if (record.memberId !== portal.memberId) throw restErrors.noAuthFound();
  if (!portal.hasApp || record.installation !== portal.installation) {
    throw restErrors.applicationNotFound();
  }
  if (record.revoked) throw restErrors.invalidToken();
  if (emulator.clock.now() >= record.expiresAtMs) throw restErrors.expiredToken();
  // OAuth\Auth checks the feature whenever the parameter is set at all.
  const connectorGiven = params.auth_connector !== undefined && params.auth_connector !== null;
  if (connectorGiven && !portal.settings.features.rest_auth_connector) {
    throw restErrors.wrongLicense('auth_connector');
  }
  return {
    userId: record.userId,
    isAdmin: portal.isAdmin(record.userId),
    app: { authConnector: phpString(params.auth_connector), scopes: record.scope.split(',') },
  };
}

function bearerToken(header: string | undefined): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? '';
}
