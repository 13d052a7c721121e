import { drainWaitingSince, secondsSince, tokenHealthOf } from './portal-health';

const now = new Date('2026-03-01T12:00:00Z');
const at = (offsetMs: number): Date => new Date(now.getTime() + offsetMs);
const DAY = 86_400_000;

describe('tokenHealthOf', () => {
  it.each([
    ['no chain', undefined, 'missing'],
    ['a wiped chain', { present: false, accessExpiresAt: null, refreshExpiresAt: null }, 'missing'],
    [
      'a fresh chain',
      { present: true, accessExpiresAt: at(3600_000), refreshExpiresAt: at(20 * DAY) },
      'ok',
    ],
    [
      'an expired access token',
      { present: true, accessExpiresAt: at(-1), refreshExpiresAt: at(20 * DAY) },
      'access_expired',
    ],
    [
      'a refresh token near its end',
      { present: true, accessExpiresAt: at(3600_000), refreshExpiresAt: at(2 * DAY) },
      'refresh_expiring',
    ],
    [
      'an expired refresh token',
      { present: true, accessExpiresAt: at(-1), refreshExpiresAt: at(-1) },
      'refresh_expired',
    ],
  ] as const)('calls %s %s', (_label, tokens, health) => {
    expect(tokenHealthOf(tokens, now)).toBe(health);
  });
});

describe('drainWaitingSince', () => {
  it('is the request time while no drain has started since', () => {
    expect(drainWaitingSince({ drainRequestedAt: at(-5000), lastDrainStartedAt: null })).toEqual(
      at(-5000),
    );
    expect(
      drainWaitingSince({ drainRequestedAt: at(-5000), lastDrainStartedAt: at(-9000) }),
    ).toEqual(at(-5000));
  });

  it('is null once a drain started after the request, or without a request', () => {
    expect(
      drainWaitingSince({ drainRequestedAt: at(-5000), lastDrainStartedAt: at(-4000) }),
    ).toBeNull();
    expect(drainWaitingSince({ drainRequestedAt: null, lastDrainStartedAt: null })).toBeNull();
    expect(drainWaitingSince(undefined)).toBeNull();
  });
});

describe('secondsSince', () => {
  it('rounds to whole seconds and never goes negative', () => {
    expect(secondsSince(at(-90_400), now)).toBe(90);
    expect(secondsSince(at(5000), now)).toBe(0);
    expect(secondsSince(null, now)).toBe(0);
  });
});
