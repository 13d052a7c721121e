import { startEmulator, type CreatePortalRequest, type RunningEmulator } from '../../src/emulator';

const CLIENT = { clientId: 'test.app', clientSecret: 'test-secret' };

interface TokenAnswer {
  access_token: string;
  refresh_token: string;
  client_endpoint: string;
  domain: string;
  server_endpoint: string;
  member_id: string;
  status: string;
  scope: string;
  user_id: number;
  expires: number;
  expires_in: number;
  error?: string;
  error_description?: string;
}

interface Envelope<T = Record<string, unknown>> {
  result: T;
  error?: string;
  error_description?: string;
}

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator(CLIENT);
});

afterAll(() => emulator.close());

async function installedPortal(request: CreatePortalRequest = {}) {
  const portal = await emulator.control.createPortal(request);
  const { form } = await emulator.control.install(portal.memberId, { mode: 'ui' });
  await emulator.control.finishInstall(portal.memberId);
  return { ...portal, accessToken: form.AUTH_ID, refreshToken: form.REFRESH_ID };
}

async function refreshByForm(refreshToken: string, client = CLIENT) {
  const response = await fetch(`${emulator.url}/oauth/token/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: client.clientId,
      client_secret: client.clientSecret,
      refresh_token: refreshToken,
    }).toString(),
  });
  return { status: response.status, body: (await response.json()) as TokenAnswer };
}

async function tokenByQuery(params: Record<string, string>) {
  const query = new URLSearchParams({
    client_id: CLIENT.clientId,
    client_secret: CLIENT.clientSecret,
    ...params,
  });
  const response = await fetch(`${emulator.url}/oauth/token/?${query.toString()}`);
  return { status: response.status, body: (await response.json()) as TokenAnswer };
}

async function appInfo(clientEndpoint: string, token: string) {
  const response = await fetch(`${clientEndpoint}app.info.json?auth=${token}`);
  return { status: response.status, body: (await response.json()) as Envelope };
}

describe('OAuth token endpoint', () => {
  it('answers a refresh with the contract fields and a new token pair', async () => {
    const portal = await installedPortal();
    const { status, body } = await refreshByForm(portal.refreshToken);

    expect(status).toBe(200);
    expect(body).toMatchObject({
      member_id: portal.memberId,
      client_endpoint: portal.clientEndpoint,
      domain: '127.0.0.1',
      server_endpoint: `${emulator.url}/rest/`,
      status: 'F',
      scope: 'crm',
      user_id: 1,
      expires_in: 3600,
    });
    expect(body.expires).toBeGreaterThan(Date.now() / 1000);
    expect(body.access_token).not.toBe(portal.accessToken);
    expect(body.refresh_token).not.toBe(portal.refreshToken);
    expect((await appInfo(portal.clientEndpoint, body.access_token)).status).toBe(200);
  });

  it('kills the used refresh token and the access token issued with it', async () => {
    const portal = await installedPortal();
    const rotated = await refreshByForm(portal.refreshToken);
    expect(rotated.status).toBe(200);

    const reuse = await tokenByQuery({
      grant_type: 'refresh_token',
      refresh_token: portal.refreshToken,
    });
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');

    const oldAccess = await appInfo(portal.clientEndpoint, portal.accessToken);
    expect(oldAccess.status).toBe(401);
    expect(oldAccess.body.error).toBe('invalid_token');

    const stats = await emulator.control.stats(portal.memberId);
    expect(stats.refreshes).toBe(1);
    expect(stats.invalidGrants).toBe(1);
  });

  it('refuses a wrong client secret with invalid_client and an unknown token with invalid_grant', async () => {
    const portal = await installedPortal();

    const wrongSecret = await refreshByForm(portal.refreshToken, {
      ...CLIENT,
      clientSecret: 'nope',
    });
    expect(wrongSecret.status).toBe(400);
    expect(wrongSecret.body.error).toBe('invalid_client');

    const unknown = await refreshByForm('not-a-token');
    expect(unknown.body.error).toBe('invalid_grant');

    // Neither refusal spent the real token.
    expect((await refreshByForm(portal.refreshToken)).status).toBe(200);
  });

  it('answers PAYMENT_REQUIRED while payment is disallowed, without spending the token', async () => {
    const portal = await installedPortal();
    await emulator.control.setFaults(portal.memberId, { paymentAllowed: false });

    const unpaid = await refreshByForm(portal.refreshToken);
    expect(unpaid.status).toBe(400);
    expect(unpaid.body.error).toBe('PAYMENT_REQUIRED');

    await emulator.control.clearFaults(portal.memberId);
    expect((await refreshByForm(portal.refreshToken)).status).toBe(200);
  });

  it('exchanges an authorization code once, for the user who opened the app', async () => {
    const portal = await installedPortal();
    const { code } = await emulator.control.createAuthorizationCode(portal.memberId, {
      userId: 7,
      admin: false,
    });

    const exchanged = await tokenByQuery({ grant_type: 'authorization_code', code });
    expect(exchanged.status).toBe(200);
    expect(exchanged.body.user_id).toBe(7);

    const profile = await fetch(
      `${portal.clientEndpoint}profile?auth=${exchanged.body.access_token}`,
    );
    expect(((await profile.json()) as Envelope).result).toMatchObject({ ID: '7', ADMIN: false });

    const again = await tokenByQuery({ grant_type: 'authorization_code', code });
    expect(again.body.error).toBe('invalid_grant');
  });

  it('expires access tokens on demand, and refresh tokens too when asked', async () => {
    const portal = await installedPortal();
    await emulator.control.expireTokens(portal.memberId);

    const expired = await appInfo(portal.clientEndpoint, portal.accessToken);
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual({
      error: 'expired_token',
      error_description: 'The access token provided has expired',
    });

    const refreshed = await refreshByForm(portal.refreshToken);
    expect(refreshed.status).toBe(200);

    await emulator.control.expireTokens(portal.memberId, { refresh: true });
    expect((await refreshByForm(refreshed.body.refresh_token)).body.error).toBe('invalid_grant');
  });
});

describe('REST authentication', () => {
  it('answers NO_AUTH_FOUND without a token or with another portal’s token, invalid_token for garbage', async () => {
    const portal = await installedPortal();
    const other = await installedPortal();

    const missing = await fetch(`${portal.clientEndpoint}app.info`);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as Envelope).error).toBe('NO_AUTH_FOUND');

    const foreign = await appInfo(portal.clientEndpoint, other.accessToken);
    expect(foreign.status).toBe(401);
    expect(foreign.body.error).toBe('NO_AUTH_FOUND');

    const garbage = await appInfo(portal.clientEndpoint, 'garbage');
    expect(garbage.status).toBe(401);
    expect(garbage.body.error).toBe('invalid_token');
  });

  it('takes the token from a Bearer header, an access_token form field or the auth query', async () => {
    const portal = await installedPortal();

    const bearer = await fetch(`${portal.clientEndpoint}/app.info`, {
      method: 'POST',
      headers: { authorization: `Bearer ${portal.accessToken}` },
    });
    expect(bearer.status).toBe(200);

    const form = await fetch(`${portal.clientEndpoint}profile.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `access_token=${portal.accessToken}`,
    });
    expect(((await form.json()) as Envelope).result).toMatchObject({ ID: '1', ADMIN: true });

    expect((await appInfo(portal.clientEndpoint, portal.accessToken)).status).toBe(200);
  });

  it('lists every token it issued, for leak scans', async () => {
    const portal = await installedPortal();
    const rotated = await refreshByForm(portal.refreshToken);
    const tokens = await emulator.control.tokens(portal.memberId);

    expect(tokens.accessTokens).toEqual([portal.accessToken, rotated.body.access_token]);
    expect(tokens.refreshTokens).toEqual([portal.refreshToken, rotated.body.refresh_token]);
    expect(tokens.applicationTokens).toEqual([portal.applicationToken]);
  });
});
