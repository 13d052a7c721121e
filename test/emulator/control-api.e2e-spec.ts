import { EmulatorControlError, startEmulator, type RunningEmulator } from '../../src/emulator';

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ clientId: 'test.app', clientSecret: 'test-secret' });
});

afterAll(() => emulator.close());

async function refusal(action: Promise<unknown>): Promise<EmulatorControlError> {
  try {
    await action;
  } catch (error) {
    if (error instanceof EmulatorControlError) return error;
    throw error;
  }
  throw new Error('expected the control API to refuse');
}

describe('control API', () => {
  it('creates portals with chosen or random ids, and refuses a taken member_id with 409', async () => {
    const chosen = await emulator.control.createPortal({
      memberId: 'acme',
      domain: 'Acme.Bitrix24.test',
    });
    const random = await emulator.control.createPortal();

    expect(chosen).toMatchObject({
      memberId: 'acme',
      domain: 'acme.bitrix24.test',
      clientEndpoint: `${emulator.url}/acme.bitrix24.test/rest/`,
    });
    expect(random.memberId).toMatch(/^[0-9a-f]{32}$/);
    expect(random.applicationToken).toMatch(/^[0-9a-f]{32}$/);
    expect(await refusal(emulator.control.createPortal({ memberId: 'acme' }))).toMatchObject({
      status: 409,
      code: 'PORTAL_EXISTS',
    });
  });

  it('refuses unknown fields by name, so a typo never passes silently', async () => {
    const portal = await emulator.control.createPortal();
    const response = await fetch(`${emulator.url}/_emulator/portals/${portal.memberId}/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRat: 1 }),
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: 'INVALID_REQUEST',
      error_description: 'body must NOT have additional properties: errorRat',
    });
  });

  it('answers 404 for an unknown portal and 409 for an install out of turn', async () => {
    const portal = await emulator.control.createPortal();

    expect((await refusal(emulator.control.stats('no-such-portal'))).status).toBe(404);
    expect((await refusal(emulator.control.finishInstall(portal.memberId))).code).toBe(
      'NOT_INSTALLED',
    );
    await emulator.control.install(portal.memberId, { mode: 'ui' });
    expect((await refusal(emulator.control.install(portal.memberId, { mode: 'ui' }))).code).toBe(
      'ALREADY_INSTALLED',
    );
    expect(
      (
        await refusal(
          emulator.control.install('no-such-portal', { mode: 'event', handlerUrl: 'x' }),
        )
      ).status,
    ).toBe(404);
  });

  it('refuses an install handler URL that Bitrix24 would refuse', async () => {
    const portal = await emulator.control.createPortal();

    const localhost = await refusal(
      emulator.control.install(portal.memberId, {
        mode: 'event',
        handlerUrl: 'http://localhost:3000/',
      }),
    );

    expect(localhost).toMatchObject({ status: 400, code: 'ERROR_WRONG_HANDLER_URL' });
  });

  it('gives an install page the form and query Bitrix24 posts to it', async () => {
    const portal = await emulator.control.createPortal({ appStatus: 'P' });
    const { form, query } = await emulator.control.install(portal.memberId, { mode: 'ui' });

    expect(form).toMatchObject({
      AUTH_EXPIRES: '3600',
      SERVER_ENDPOINT: `${emulator.url}/rest/`,
      APPLICATION_TOKEN: portal.applicationToken,
      APPLICATION_SCOPE: 'crm',
      member_id: portal.memberId,
      status: 'P',
      PLACEMENT: 'DEFAULT',
    });
    expect(form.AUTH_ID).toMatch(/^[a-z0-9]{32}$/);
    expect(form.REFRESH_ID).toMatch(/^[a-z0-9]{32}$/);
    expect(query).toMatchObject({ DOMAIN: portal.domain, PROTOCOL: '0', LANG: 'en' });
    expect((await emulator.control.stats(portal.memberId)).installState).toBe('installing');
  });

  it('accepts a bodiless POST where every field is optional', async () => {
    const portal = await emulator.control.createPortal();
    await emulator.control.install(portal.memberId, { mode: 'ui' });

    const response = await fetch(
      `${emulator.url}/_emulator/portals/${portal.memberId}/install-finish`,
      {
        method: 'POST',
      },
    );

    expect(response.status).toBe(200);
    expect((await emulator.control.stats(portal.memberId)).installed).toBe(true);
  });
});
