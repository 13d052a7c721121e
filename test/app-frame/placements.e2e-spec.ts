import { DataSource } from 'typeorm';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { PlacementSync } from '../../src/app-frame/placement-sync.service';
import { AppLogger } from '../../src/logging/app-logger';
import { EventBindingService } from '../../src/portals/event-binding.service';
import { installPortalDirectly } from '../support/portal-fixtures';
import { TEST_ADMIN_TOKEN } from '../support/test-app';
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
      app.get(DataSource),
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

describe('placements in the admin portal view', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness();
    // Declared placements joining the app's real install flow, as AppFrameModule.withPlacements does.
    const app = harness.app.app;
    new PlacementSync(
      app.get(Bitrix24Client),
      harness.app.config,
      [
        { code: 'CRM_DEAL_DETAIL_TAB', title: 'Deal tab' },
        { code: 'crm_lead_detail_tab', title: 'Lead tab' },
      ],
      app.get(EventBindingService),
      app.get(AppLogger),
      app.get(DataSource),
    );
  });
  afterAll(() => harness.close());

  async function detail(memberId: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${harness.app.url}/admin/portals/${memberId}`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  }

  it('lists the declared placements once the install has bound them', async () => {
    const before = Date.now();
    const portal = await installViaEvent(harness);
    const view = await detail(portal.memberId);
    expect(view.placements).toEqual([
      { code: 'CRM_DEAL_DETAIL_TAB', title: 'Deal tab' },
      { code: 'CRM_LEAD_DETAIL_TAB', title: 'Lead tab' },
    ]);
    expect(Date.parse(view.placementsSyncedAt as string)).toBeGreaterThanOrEqual(before - 1000);
    const bound = (
      await harness.app.app
        .get(Bitrix24Client)
        .forPortal(portal.memberId)
        .call<{ placement: string }[]>('placement.get')
    ).result;
    expect(bound.map(({ placement }) => placement).sort()).toEqual([
      'CRM_DEAL_DETAIL_TAB',
      'CRM_LEAD_DETAIL_TAB',
    ]);
  });

  it('shows no placements and no sync time for a portal never synced', async () => {
    const portal = await installPortalDirectly(harness.emulator, harness.app);
    const view = await detail(portal.memberId);
    expect(view.placements).toEqual([]);
    expect(view.placementsSyncedAt).toBeNull();
  });
});
