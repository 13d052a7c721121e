import { randomBytes } from 'node:crypto';
import { AppSessionSigner } from './app-session';

const who = {
  memberId: 'member-a',
  userId: 7,
  isAdmin: false,
  userName: 'User 7',
  placement: 'DEFAULT',
  placementOptions: {},
};

describe('AppSessionSigner', () => {
  const key = randomBytes(32);

  it('accepts its own token until it expires, and not a second after', () => {
    let now = 1_000_000_000_000;
    const signer = new AppSessionSigner(key, () => now);
    const { token, expiresAt } = signer.sign(who, 600);
    expect(expiresAt).toBe(1_000_000_000 + 600);
    expect(signer.verify(token)).toEqual({ ...who, expiresAt });
    now += 599_000;
    expect(signer.verify(token)).not.toBeNull();
    now += 1_000;
    expect(signer.verify(token)).toBeNull();
  });

  it('caps the lifetime at one hour', () => {
    const signer = new AppSessionSigner(key, () => 0);
    expect(signer.sign(who, 86_400).expiresAt).toBe(3600);
  });

  it('refuses a token signed with another key, altered, or malformed', () => {
    const signer = new AppSessionSigner(key);
    const other = new AppSessionSigner(randomBytes(32));
    const { token } = other.sign(who, 600);
    expect(signer.verify(token)).toBeNull();
    const own = signer.sign(who, 600).token;
    const [version, payload, mac] = own.split('.');
    const altered = Buffer.from(
      Buffer.from(payload, 'base64url').toString('utf8').replace('"a":false', '"a":true'),
    ).toString('base64url');
    expect(signer.verify(`${version}.${altered}.${mac}`)).toBeNull();
    expect(signer.verify('')).toBeNull();
    expect(signer.verify(`s0.${payload}.${mac}`)).toBeNull();
    expect(signer.verify(`${version}.${payload}`)).toBeNull();
  });
});
