import { accessExpiryOf, planStatusOf, portalLocationOf } from './oauth-answer';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('reading an OAuth answer', () => {
  describe('accessExpiryOf', () => {
    it('takes expires_in relative to our clock', () => {
      expect(accessExpiryOf({ expires_in: 3600, expires: 0 }, NOW)).toEqual(
        new Date(NOW + 3_600_000),
      );
    });

    it('falls back to the absolute expires when expires_in is missing or unusable', () => {
      const expires = NOW / 1000 + 1800;
      for (const expiresIn of [undefined, 0, -5, 'soon', 10 ** 12]) {
        const answer = { expires_in: expiresIn as number, expires };
        expect(accessExpiryOf(answer, NOW)).toEqual(new Date(NOW + 1_800_000));
      }
    });

    it('gives an hour when neither field says anything usable, never an invalid date', () => {
      for (const expires of [undefined, null, 'x', NOW / 1000 - 60, 10 ** 15]) {
        const answer = { expires_in: undefined as unknown as number, expires: expires as number };
        const expiry = accessExpiryOf(answer, NOW);
        expect(expiry).toEqual(new Date(NOW + 3_600_000));
      }
    });
  });

  describe('portalLocationOf', () => {
    it('keeps an http(s) endpoint and reads its host', () => {
      expect(portalLocationOf('https://example.bitrix24.de/rest/')).toEqual({
        clientEndpoint: 'https://example.bitrix24.de/rest/',
        domain: 'example.bitrix24.de',
      });
      expect(portalLocationOf('http://127.0.0.1:4000/p1.local/rest/')?.domain).toBe(
        '127.0.0.1:4000',
      );
    });

    it('refuses what cannot be stored or called', () => {
      for (const endpoint of [
        undefined,
        42,
        '',
        'not a url',
        'ftp://example.com/rest/',
        'javascript:alert(1)',
        `https://example.com/${'a'.repeat(600)}`,
        `https://${'a'.repeat(250)}.example.com/rest/`,
      ]) {
        expect(portalLocationOf(endpoint)).toBeNull();
      }
    });
  });

  it('planStatusOf knows Bitrix24 plan letters only', () => {
    expect(planStatusOf('P')).toBe('P');
    expect(planStatusOf('Z')).toBeNull();
    expect(planStatusOf(undefined)).toBeNull();
  });
});
