import { installPortalDirectly } from '../support/portal-fixtures';
import { Bitrix24Harness, startBitrix24Harness, vaultOf } from './bitrix24-harness';
import { OAuthProxy, startOAuthProxy } from './oauth-proxy';

describe("refreshes go to the portal's own OAuth server only when it is a known one", () => {
  let h: Bitrix24Harness;
  const proxies: OAuthProxy[] = [];

  beforeAll(async () => {
    h = await startBitrix24Harness();
  });

  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
    await h?.close();
  });

  async function serverEndpoint(memberId: string): Promise<string | null> {
    const { rows } = await h.sql.query<{ server_endpoint: string | null }>(
      'SELECT server_endpoint FROM portals WHERE member_id = $1',
      [memberId],
    );
    return rows[0].server_endpoint;
  }

  it('refreshes at BITRIX24_OAUTH_URL when the stored server_endpoint names an unknown host, then stores the known one the answer names', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    await h.sql.query('UPDATE portals SET server_endpoint = $2 WHERE member_id = $1', [
      portal.memberId,
      'https://oauth.attacker.test/rest/',
    ]);
    const before = await h.emulator.control.stats(portal.memberId);

    await vaultOf(h.app).refresh(portal.memberId);

    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.refreshes - before.refreshes).toBe(1);
    expect(await serverEndpoint(portal.memberId)).toBe(`${h.emulator.url}/rest/`);
  });

  it('keeps the stored server_endpoint when a refresh answer names an unknown host', async () => {
    const proxy = await startOAuthProxy(h.emulator.url, {
      rewrite: (answer) => ({ ...answer, server_endpoint: 'https://oauth.attacker.test/rest/' }),
    });
    proxies.push(proxy);
    const replica = await h.startReplica({ BITRIX24_OAUTH_URL: proxy.url });
    const portal = await installPortalDirectly(h.emulator, replica);
    const stored = `${proxy.url}/rest/`;
    await h.sql.query('UPDATE portals SET server_endpoint = $2 WHERE member_id = $1', [
      portal.memberId,
      stored,
    ]);

    await vaultOf(replica).refresh(portal.memberId);

    expect(await serverEndpoint(portal.memberId)).toBe(stored);
  });
});
