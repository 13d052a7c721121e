import { ManualClock } from '../clock';
import { TokenRegistry } from './token-registry';

const grant = { memberId: 'm1', userId: 1, installation: 1, scope: 'crm' };

describe('TokenRegistry', () => {
  it('rotates a refresh token once, killing it and the access token issued with it', () => {
    const registry = new TokenRegistry(new ManualClock(), {
      accessSeconds: 3600,
      refreshSeconds: 86_400,
    });
    const first = registry.issue(grant);
    const second = registry.rotate(first.refreshToken);

    expect(registry.inspectRefreshToken(first.refreshToken)).toMatchObject({
      usable: false,
      reason: 'used',
    });
    expect(registry.findAccessToken(first.accessToken)?.revoked).toBe(true);
    expect(registry.findAccessToken(second.accessToken)?.revoked).toBe(false);
    expect(registry.inspectRefreshToken(second.refreshToken).usable).toBe(true);
  });

  it('lets independent chains live side by side', () => {
    const registry = new TokenRegistry(new ManualClock(), {
      accessSeconds: 3600,
      refreshSeconds: 86_400,
    });
    const install = registry.issue(grant);
    const fromEvent = registry.issue(grant);
    registry.rotate(fromEvent.refreshToken);

    expect(registry.inspectRefreshToken(install.refreshToken).usable).toBe(true);
  });

  it('expires refresh tokens after their lifetime and codes after 30 seconds', () => {
    const clock = new ManualClock();
    const registry = new TokenRegistry(clock, { accessSeconds: 3600, refreshSeconds: 28 * 86_400 });
    const tokens = registry.issue(grant);
    const code = registry.issueAuthorizationCode(grant);
    clock.advance(31_000);

    expect(registry.redeemAuthorizationCode(code)).toBeUndefined();
    clock.advance(28 * 86_400_000);
    expect(registry.inspectRefreshToken(tokens.refreshToken)).toMatchObject({ reason: 'expired' });
  });
});
