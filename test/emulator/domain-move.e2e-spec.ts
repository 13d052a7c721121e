import { EmulatorControlError, startEmulator, type RunningEmulator } from '../../src/emulator';

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ clientId: 'test.app', clientSecret: 'test-secret' });
});

afterAll(() => emulator.close());

/** An installed portal and its first token pair (from the install form's REFRESH_ID). */
async function installedPortal(domain: string) {
  const portal = await emulator.control.createPortal({ domain });
  const { form } = await emulator.control.install(portal.memberId, { mode: 'ui' });
  await emulator.control.finishInstall(portal.memberId);
  return { portal, accessToken: form.AUTH_ID, refreshToken: form.REFRESH_ID };
}

async function post(url: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    redirect: 'manual',
  });
}

async function refresh(refreshToken: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${emulator.url}/oauth/token/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: 'test.app',
      client_secret: 'test-secret',
      refresh_token: refreshToken,
    }).toString(),
  });
  return (await response.json()) as Record<string, unknown>;
}

describe('domain moves', () => {
  it('answers the old REST path with 302 to the same path at the new domain, on another host', async () => {
    const { portal, accessToken, refreshToken } = await installedPortal(
      'before-move.bitrix24.test',
    );

    const moved = await emulator.control.moveDomain(portal.memberId, {
      domain: 'after-move.bitrix24.test',
    });

    expect(moved.from).toEqual({ domain: portal.domain, clientEndpoint: portal.clientEndpoint });
    expect(moved.to.domain).toBe('after-move.bitrix24.test');
    expect(new URL(moved.to.clientEndpoint).host).not.toBe(new URL(portal.clientEndpoint).host);
    expect(new URL(moved.to.clientEndpoint).pathname).toBe('/after-move.bitrix24.test/rest/');

    const old = await post(`${portal.clientEndpoint}app.info?x=1`, { auth: accessToken });
    expect(old.status).toBe(302);
    expect(old.headers.get('location')).toBe(`${moved.to.clientEndpoint}app.info?x=1`);

    const atNew = await post(`${moved.to.clientEndpoint}app.info`, { auth: accessToken });
    expect(atNew.status).toBe(200);
    expect(await atNew.json()).toMatchObject({ result: { INSTALLED: true } });

    expect(await refresh(refreshToken)).toMatchObject({
      client_endpoint: moved.to.clientEndpoint,
      member_id: portal.memberId,
    });
  });

  it('makes a loop on request: the old and new addresses redirect to each other, OAuth keeps the old one', async () => {
    const { portal, accessToken, refreshToken } = await installedPortal('loop-old.bitrix24.test');

    const moved = await emulator.control.moveDomain(portal.memberId, {
      domain: 'loop-new.bitrix24.test',
      loop: true,
    });

    const old = await post(`${portal.clientEndpoint}app.info`, { auth: accessToken });
    expect(old.status).toBe(302);
    expect(old.headers.get('location')).toBe(`${moved.to.clientEndpoint}app.info`);
    const back = await post(`${moved.to.clientEndpoint}app.info`, { auth: accessToken });
    expect(back.status).toBe(302);
    expect(back.headers.get('location')).toBe(`${portal.clientEndpoint}app.info`);
    expect(await refresh(refreshToken)).toMatchObject({ client_endpoint: portal.clientEndpoint });
    const requests = await emulator.control.requests(portal.memberId);
    expect(requests.filter((request) => request.outcome === 'redirect_302')).toHaveLength(2);
  });

  it("refuses a move to another portal's domain with 409", async () => {
    const first = await emulator.control.createPortal({ domain: 'taken-one.bitrix24.test' });
    const second = await emulator.control.createPortal();
    const refused = await emulator.control
      .moveDomain(second.memberId, { domain: first.domain })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EmulatorControlError);
    expect(refused).toMatchObject({ status: 409, code: 'DOMAIN_TAKEN' });
  });
});
