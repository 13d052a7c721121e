import type { Emulator } from '../emulator';
import type { Portal } from '../portals/portal';
import { phpString } from '../rest/php-values';
import type { IssuedTokens, TokenGrant } from './token-registry';

export interface TokenEndpointAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

/** The contract leaves the statuses open; every refusal is a 400 with `error` to branch on. */
const refusal = (error: string, description: string): TokenEndpointAnswer => ({
  status: 400,
  body: { error, error_description: description },
});

const REFUSED_REFRESH_TOKEN: Readonly<Record<'unknown' | 'used' | 'expired', string>> = {
  unknown: 'The refresh token is unknown',
  used: 'The refresh token has already been used',
  expired: 'The refresh token has expired',
};

/** oauth.bitrix.info's token endpoint (contract §6): code exchange and single-use refresh. */
export class OAuthServer {
  constructor(private readonly emulator: Emulator) {}

  exchange(params: Readonly<Record<string, unknown>>): TokenEndpointAnswer {
    const { clientId, clientSecret } = this.emulator.options;
    if (
      phpString(params.client_id) !== clientId ||
      phpString(params.client_secret) !== clientSecret
    ) {
      return refusal('invalid_client', 'Invalid client credentials');
    }
    const grantType = phpString(params.grant_type);
    if (grantType === 'refresh_token') return this.refresh(phpString(params.refresh_token));
    if (grantType === 'authorization_code') return this.exchangeCode(phpString(params.code));
    return refusal('invalid_request', 'grant_type must be refresh_token or authorization_code');
  }

  private refresh(refreshToken: string): TokenEndpointAnswer {
    if (refreshToken === '') return refusal('invalid_request', 'refresh_token is missing');
    const state = this.emulator.tokens.inspectRefreshToken(refreshToken);
    if (!state.usable) {
      const portal = state.grant && this.emulator.portals.findByMemberId(state.grant.memberId);
      if (portal) portal.counters.invalidGrants++;
      return refusal('invalid_grant', REFUSED_REFRESH_TOKEN[state.reason]);
    }
    const checked = this.checkGrant(state.grant);
    if (checked.refusal !== undefined) return checked.refusal;
    const tokens = this.emulator.tokens.rotate(refreshToken);
    checked.portal.counters.refreshes++;
    return this.granted(checked.portal, tokens);
  }

  private exchangeCode(code: string): TokenEndpointAnswer {
    const grant = code === '' ? undefined : this.emulator.tokens.redeemAuthorizationCode(code);
    if (grant === undefined) {
      return refusal('invalid_grant', 'The authorization code is invalid or expired');
    }
    const checked = this.checkGrant(grant);
    if (checked.refusal !== undefined) return checked.refusal;
    return this.granted(checked.portal, this.emulator.tokens.issue(grant));
  }

  /** A grant only works while its installation of the app lives and the app is paid for. */
  private checkGrant(
    grant: TokenGrant,
  ): { portal: Portal; refusal?: undefined } | { refusal: TokenEndpointAnswer } {
    const portal = this.emulator.portals.findByMemberId(grant.memberId);
    if (portal === undefined) {
      return { refusal: refusal('invalid_grant', 'The portal does not exist') };
    }
    if (!portal.hasApp || portal.installation !== grant.installation) {
      portal.counters.invalidGrants++;
      return {
        refusal: refusal('invalid_grant', 'The application is not installed on this portal'),
      };
    }
    if (!portal.settings.paymentAllowed) {
      return { refusal: refusal('PAYMENT_REQUIRED', 'Payment required') };
    }
    return { portal };
  }

  private granted(portal: Portal, tokens: IssuedTokens): TokenEndpointAnswer {
    return {
      status: 200,
      body: {
        access_token: tokens.accessToken,
        client_endpoint: this.emulator.clientEndpoint(portal),
        domain: this.emulator.oauthDomain,
        expires: Math.floor(tokens.expiresAtMs / 1000),
        expires_in: this.emulator.tokens.accessLifetimeSeconds,
        member_id: portal.memberId,
        refresh_token: tokens.refreshToken,
        scope: tokens.grant.scope,
        server_endpoint: this.emulator.serverEndpoint,
        status: portal.settings.appStatus,
        user_id: tokens.grant.userId,
      },
    };
  }
}
