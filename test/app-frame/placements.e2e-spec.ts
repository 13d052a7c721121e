import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { PlacementSync } from '../../src/app-frame/placement-sync.service';
import { AppLogger } from '../../src/logging/app-logger';
import { EventBindingService } from '../../src/portals/event-binding.service';
import { installPortalDirectly } from '../support/portal-fixtures';
import { installViaEvent, startHarness, type Harness } from '../webhooks/webhook-harness';

describe('placements declared by the vendor', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  function syncWith(codes: string[]): PlacementSync {
    const app = harness.app.app;
    // A binding service of its own, so this sync does not also join the app's install flow.
    const unusedFlow = { addStep: () => undefined } as unknown as EventBindingService;
    return new PlacementSync(
      app.get(Bitrix24Client),
      harness.app.config,
      codes.map((code) => ({ code, title: `Title of ${code}` })),
      unusedFlow,
      app.get(AppLogger),
    );
  }

  async function bound(memberId: string): Promise<unknown> {
    return (await harness.app.app.get(Bitrix24Client).forPortal(memberId).call('placement.get'))
      .result;
  }

  it('binds each declared placement once across repeated runs, and unbinds undeclared ones', async () => {
    const portal = await installPortalDirectly(harness.emulator, harness.app);
    const sync = syncWith(['CRM_DEAL_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB']);
    expect(await sync.sync(portal.memberId)).toEqual({
      bound: ['CRM_DEAL_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB'],
      alreadyBound: [],
      unbound: [],
    });
    expect(await sync.sync(portal.memberId)).toEqual({
      bound: [],
      alreadyBound: ['CRM_DEAL_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB'],
      unbound: [],
    });
    const stats = await harness.emulator.control.stats(portal.memberId);
    expect(stats.restCalls['placement.bind']).toBe(2);

    expect(await syncWith(['CRM_DEAL_DETAIL_TAB']).sync(portal.memberId)).toEqual({
      bound: [],
      alreadyBound: ['CRM_DEAL_DETAIL_TAB'],
      unbound: ['CRM_LEAD_DETAIL_TAB'],
    });
    expect(await bound(portal.memberId)).toEqual([
      {
        placement: 'CRM_DEAL_DETAIL_TAB',
        handler: `${harness.app.url}/bitrix24/app`,
        title: 'Title of CRM_DEAL_DETAIL_TAB',
        description: '',
      },
    ]);
  });

  it('runs as a step of the install flow', async () => {
    const portal = await installViaEvent(harness);
    const stats = await harness.emulator.control.stats(portal.memberId);
    expect(stats.restCalls['placement.get']).toBe(1);
  });
});
