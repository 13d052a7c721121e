import { knownOAuthServer, oauthTokenUrl } from './oauth-server-choice';

const CONFIGURED = 'https://oauth.example.test';

describe('oauthTokenUrl', () => {
  it.each([
    ['https://oauth.bitrix.info/rest/', 'https://oauth.bitrix.info/oauth/token/'],
    ['https://oauth.bitrix24.tech/rest/', 'https://oauth.bitrix24.tech/oauth/token/'],
    ['https://OAUTH.BITRIX.INFO/rest/', 'https://oauth.bitrix.info/oauth/token/'],
  ])('sends the refresh of a portal served by %s to that server', (serverEndpoint, expected) => {
    expect(oauthTokenUrl(serverEndpoint, CONFIGURED)).toBe(expected);
  });

  it('sends the refresh to the configured server when the portal names its host', () => {
    expect(oauthTokenUrl('http://127.0.0.1:4100/rest/', 'http://127.0.0.1:4100')).toBe(
      'http://127.0.0.1:4100/oauth/token/',
    );
    expect(oauthTokenUrl('https://oauth.example.test/rest/', CONFIGURED)).toBe(
      'https://oauth.example.test/oauth/token/',
    );
  });

  it.each([
    ['an unknown host', 'https://oauth.attacker.test/rest/'],
    ['a look-alike host', 'https://oauth.bitrix.info.attacker.test/rest/'],
    ['a known host on another port', 'https://oauth.bitrix.info:8443/rest/'],
    ['a known host with credentials', 'https://user:pass@oauth.bitrix.info/rest/'],
    ['the http variant of a known host', 'http://oauth.bitrix.info/rest/'],
    ['the configured host over another scheme', 'http://oauth.example.test/rest/'],
    ['the configured host on another port', 'https://oauth.example.test:444/rest/'],
    ['a value that is not a URL', 'oauth.bitrix.info'],
    ['an empty value', ''],
    ['a missing value', null],
    ['an undefined value', undefined],
  ])('falls back to the configured server for %s', (_case, serverEndpoint) => {
    expect(oauthTokenUrl(serverEndpoint, CONFIGURED)).toBe(
      'https://oauth.example.test/oauth/token/',
    );
    expect(knownOAuthServer(serverEndpoint, CONFIGURED)).toBeNull();
  });

  it('ignores a trailing slash on the configured server', () => {
    expect(oauthTokenUrl(null, 'https://oauth.example.test/')).toBe(
      'https://oauth.example.test/oauth/token/',
    );
  });
});
