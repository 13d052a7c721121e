import { MASKED, maskCredentials } from './credential-masking';

describe('maskCredentials', () => {
  it('masks credential keys at any depth and keeps everything else as it was', () => {
    const data = {
      FIELDS: { ID: '42', TITLE: 'Deal' },
      auth: { access_token: 'a', member_id: 'm' },
      nested: [{ REFRESH_ID: 'r', keep: 1 }, 'text', null],
      Application_Token: 't',
    };
    expect(maskCredentials(data)).toEqual({
      FIELDS: { ID: '42', TITLE: 'Deal' },
      auth: MASKED,
      nested: [{ REFRESH_ID: MASKED, keep: 1 }, 'text', null],
      Application_Token: MASKED,
    });
    expect(data.auth.access_token).toBe('a');
  });

  it('passes scalars through', () => {
    expect(maskCredentials(null)).toBeNull();
    expect(maskCredentials('x')).toBe('x');
    expect(maskCredentials(3)).toBe(3);
  });

  it('cuts off absurdly deep values instead of recursing without end', () => {
    let deep: unknown = { secret: 'leaf' };
    for (let level = 0; level < 100; level++) deep = { level: deep };
    expect(JSON.stringify(maskCredentials(deep))).toContain(MASKED);
  });
});
