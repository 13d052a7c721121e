import { FrameRequestInvalidError, parseFrameForm, parsePlacementOptions } from './frame-request';

describe('parsePlacementOptions', () => {
  it('reads "undefined", empty and [] as no options', () => {
    expect(parsePlacementOptions('undefined')).toEqual({});
    expect(parsePlacementOptions(undefined)).toEqual({});
    expect(parsePlacementOptions('')).toEqual({});
    expect(parsePlacementOptions('[]')).toEqual({});
  });

  it('reads a JSON object and refuses anything else', () => {
    expect(parsePlacementOptions('{"ID":"5"}')).toEqual({ ID: '5' });
    expect(() => parsePlacementOptions('{oops')).toThrow(FrameRequestInvalidError);
    expect(() => parsePlacementOptions('"text"')).toThrow(FrameRequestInvalidError);
    expect(() => parsePlacementOptions(['a'])).toThrow(FrameRequestInvalidError);
  });
});

describe('parseFrameForm', () => {
  const form = {
    AUTH_ID: 'access',
    AUTH_EXPIRES: '3600',
    REFRESH_ID: 'refresh',
    APPLICATION_TOKEN: 'app-token',
    member_id: 'member-a',
    PLACEMENT: 'DEFAULT',
    PLACEMENT_OPTIONS: 'undefined',
  };

  it('reads the fields Bitrix24 posts', () => {
    expect(parseFrameForm(form)).toEqual({
      memberId: 'member-a',
      accessToken: 'access',
      authExpiresSeconds: 3600,
      refreshToken: 'refresh',
      applicationToken: 'app-token',
      placement: 'DEFAULT',
      placementOptions: {},
    });
  });

  it('refuses a form without member_id, AUTH_ID or APPLICATION_TOKEN', () => {
    for (const name of ['member_id', 'AUTH_ID', 'APPLICATION_TOKEN']) {
      expect(() => parseFrameForm({ ...form, [name]: '' })).toThrow(FrameRequestInvalidError);
    }
    expect(() => parseFrameForm(null)).toThrow(FrameRequestInvalidError);
  });
});
