import { InstallRequestInvalidError } from '../portals/installation.errors';
import { parseInstallForm } from './install-request';

const FORM = {
  AUTH_ID: 'access123',
  AUTH_EXPIRES: '3600',
  REFRESH_ID: 'refresh456',
  SERVER_ENDPOINT: 'https://oauth.bitrix.info/rest/',
  APPLICATION_TOKEN: '51856fefc120afa4b628cc82d3935cce',
  member_id: 'a223c6b3710f85df22e9377d6c4f7553',
  status: 'F',
  PLACEMENT: 'DEFAULT',
};

describe('parseInstallForm', () => {
  it('keeps only what the confirmation needs', () => {
    expect(parseInstallForm(FORM)).toEqual({
      memberId: FORM.member_id,
      refreshToken: FORM.REFRESH_ID,
      applicationToken: FORM.APPLICATION_TOKEN,
    });
  });

  it.each([
    ['an empty body', undefined],
    ['no REFRESH_ID', { ...FORM, REFRESH_ID: undefined }],
    ['no member_id', { ...FORM, member_id: '' }],
    ['no APPLICATION_TOKEN', { ...FORM, APPLICATION_TOKEN: undefined }],
    ['an array as REFRESH_ID', { ...FORM, REFRESH_ID: ['a', 'b'] }],
    ['a member_id with markup', { ...FORM, member_id: '<b>x</b>' }],
  ])('refuses %s', (_case, body) => {
    expect(() => parseInstallForm(body)).toThrow(InstallRequestInvalidError);
  });
});
