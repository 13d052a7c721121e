import {
  Bitrix24ApiError,
  OAuthError,
  PortalNotActiveError,
  withoutSecret,
} from './bitrix24-api.error';

describe('Bitrix24ApiError', () => {
  it('names the method, the Bitrix24 code and its description', () => {
    const error = new Bitrix24ApiError(
      'WRONG_LICENSE',
      'no feature',
      403,
      'event.offline.get',
      'caller',
    );
    expect(error.message).toBe('Bitrix24 event.offline.get failed: WRONG_LICENSE (no feature)');
    expect(error).toMatchObject({ code: 'bitrix24_api_error', bitrixCode: 'WRONG_LICENSE' });
  });

  it('maps categories to kinds: upstream trouble is unavailable, a gone portal a conflict', () => {
    const kindOf = (category: Bitrix24ApiError['category'], status: number): string =>
      new Bitrix24ApiError('X', '', status, 'm', category).kind;
    expect(kindOf('retryable', 503)).toBe('unavailable');
    expect(kindOf('auth', 401)).toBe('unavailable');
    expect(kindOf('portal_gone', 403)).toBe('conflict');
    expect(kindOf('caller', 403)).toBe('forbidden');
    expect(kindOf('caller', 404)).toBe('not_found');
    expect(kindOf('caller', 400)).toBe('invalid_input');
  });

  it('keeps long descriptions out of the message', () => {
    const error = new Bitrix24ApiError('X', 'y'.repeat(5000), 500, 'm', 'retryable');
    expect(error.message.length).toBeLessThan(400);
    expect(error.description).toHaveLength(5000);
  });

  it('is the base of OAuth errors, which name the token endpoint', () => {
    const error = new OAuthError('invalid_grant', 'used', 400, 'auth');
    expect(error).toBeInstanceOf(Bitrix24ApiError);
    expect(error).toMatchObject({ code: 'bitrix24_oauth_error', method: 'oauth/token' });
  });
});

describe('PortalNotActiveError', () => {
  it('says why the portal gets no calls', () => {
    expect(new PortalNotActiveError('m1', 'uninstalled').message).toBe(
      'Portal m1 is uninstalled: no calls are made to it',
    );
    expect(new PortalNotActiveError('m1', 'unknown').message).toBe('Portal m1 is not installed');
    expect(new PortalNotActiveError('m1', 'no_tokens').message).toBe(
      'Portal m1 has no stored tokens',
    );
  });
});

describe('withoutSecret', () => {
  it('blanks every occurrence of the secret, and leaves text alone for an empty secret', () => {
    expect(withoutSecret('bad token abc, abc again', 'abc')).toBe(
      'bad token [redacted], [redacted] again',
    );
    expect(withoutSecret('text', '')).toBe('text');
  });
});
