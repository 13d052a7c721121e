import {
  licenseColumnsFrom,
  licenseOf,
  licenseStateOf,
  type LicenseColumns,
} from './portal-license';

const checked = (
  status: string | null,
  paymentExpired: boolean | null = false,
): LicenseColumns => ({
  licenseStatus: status,
  licensePaymentExpired: paymentExpired,
  licenseDays: null,
  licenseFamily: 'std',
  licenseCheckedAt: new Date('2026-12-01T00:00:00Z'),
});

describe('license state', () => {
  it.each([
    ['P', 'paid'],
    ['S', 'paid'],
    ['T', 'trial'],
    ['D', 'trial'],
    ['F', 'free'],
    ['L', 'local'],
    ['X', 'unknown'],
    [null, 'unknown'],
  ])('STATUS %s is %s', (status, state) => {
    expect(licenseStateOf(checked(status))).toBe(state);
  });

  it('an expired payment wins over any status, and only paid counts as paid', () => {
    expect(licenseOf(checked('P', true))).toMatchObject({ state: 'expired', paid: false });
    expect(licenseOf(checked('P'))).toMatchObject({ state: 'paid', paid: true });
    expect(licenseOf(checked('T'))).toMatchObject({ state: 'trial', paid: false });
  });

  it('is unknown before app.info was read', () => {
    expect(licenseStateOf({ ...checked('P'), licenseCheckedAt: null })).toBe('unknown');
  });
});

describe('app.info answer to columns', () => {
  it('takes what app.info says and stores odd values as unknown', () => {
    expect(
      licenseColumnsFrom({
        ID: 1,
        CODE: 'app',
        VERSION: 3,
        STATUS: 'P',
        INSTALLED: true,
        PAYMENT_EXPIRED: 'N',
        DAYS: 12,
        LICENSE_FAMILY: 'ent',
      }),
    ).toEqual({
      appVersion: '3',
      licenseStatus: 'P',
      licensePaymentExpired: false,
      licenseDays: 12,
      licenseFamily: 'ent',
    });
    expect(
      licenseColumnsFrom({
        VERSION: { nested: true },
        STATUS: 7,
        PAYMENT_EXPIRED: 'maybe',
        DAYS: '-4',
      } as never),
    ).toEqual({
      appVersion: null,
      licenseStatus: '7',
      licensePaymentExpired: null,
      licenseDays: -4,
      licenseFamily: null,
    });
  });
});
