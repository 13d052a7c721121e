/**
 * Which OAuth server a portal's refresh goes to. Bitrix24 runs two, west and east (contract §11,
 * `settings/oauth/index.md`); a portal's own `server_endpoint` names its one. Refresh tokens and the
 * client secret go only to a server we know: one of Bitrix24's (https only) or the configured one.
 */
export const KNOWN_OAUTH_HOSTS: readonly string[] = ['oauth.bitrix.info', 'oauth.bitrix24.tech'];

/** The portal's server as a base URL without a trailing slash, or null when it is not a known one. */
export function knownOAuthServer(
  serverEndpoint: string | null | undefined,
  configuredOAuthUrl: string,
): string | null {
  if (typeof serverEndpoint !== 'string' || serverEndpoint === '') return null;
  const url = URL.parse(serverEndpoint);
  if (!url || url.username !== '' || url.password !== '') return null;
  if (url.protocol === 'https:' && url.port === '' && KNOWN_OAUTH_HOSTS.includes(url.hostname)) {
    return `https://${url.hostname}`;
  }
  const configured = new URL(configuredOAuthUrl);
  if (url.protocol === configured.protocol && url.host === configured.host) {
    return configuredOAuthUrl.replace(/\/+$/, '');
  }
  return null;
}

/** The token endpoint a refresh of this portal's chain is sent to. */
export function oauthTokenUrl(
  serverEndpoint: string | null | undefined,
  configuredOAuthUrl: string,
): string {
  const server =
    knownOAuthServer(serverEndpoint, configuredOAuthUrl) ?? configuredOAuthUrl.replace(/\/+$/, '');
  return `${server}/oauth/token/`;
}
