import { PortalDirectory } from '../../src/bitrix24/portal-directory';
import { EventBindingService } from '../../src/portals/event-binding.service';
import { installPortalDirectly } from '../support/portal-fixtures';
import { Bitrix24Harness, startBitrix24Harness } from './bitrix24-harness';

describe("a portal's REST limit follows its plan", () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness();
  });

  afterAll(async () => {
    await h?.close();
  });

  async function bindAndRead(
    options: Parameters<typeof installPortalDirectly>[2],
  ): Promise<{ family: string | null; rateLimit: { rps: number; burst: number } }> {
    const portal = await installPortalDirectly(h.emulator, h.app, options);
    const directory = h.app.app.get(PortalDirectory);
    // Read once before the bind, as a running replica would have it cached.
    await directory.callableTarget(portal.memberId);
    await h.app.app.get(EventBindingService).bind(portal.memberId);
    const { rows } = await h.sql.query<{ license_family: string | null }>(
      'SELECT license_family FROM portals WHERE member_id = $1',
      [portal.memberId],
    );
    const target = await directory.callableTarget(portal.memberId);
    return { family: rows[0].license_family, rateLimit: target.rateLimit };
  }

  it('an Enterprise portal gets 5 requests/s and a burst of 250 once its plan is read at bind', async () => {
    await expect(bindAndRead({ portal: { plan: 'enterprise' } })).resolves.toEqual({
      family: 'ent',
      rateLimit: { rps: 5, burst: 250 },
    });
  });

  it('other plans keep the configured limit (2/50 by default)', async () => {
    await expect(bindAndRead({ portal: { plan: 'standard' } })).resolves.toEqual({
      family: 'std',
      rateLimit: { rps: 2, burst: 50 },
    });
  });

  it("a portal's own override wins over its plan", async () => {
    await expect(
      bindAndRead({ portal: { plan: 'enterprise' }, rateLimit: { rps: 3, burst: 30 } }),
    ).resolves.toEqual({ family: 'ent', rateLimit: { rps: 3, burst: 30 } });
  });
});
