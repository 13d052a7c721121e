import type { BatchCommand } from '../../src/bitrix24/bitrix24.types';
import { installPortalDirectly } from '../support/portal-fixtures';
import type { TestApp } from '../support/test-app';
import { Bitrix24Harness, restClient, startBitrix24Harness } from './bitrix24-harness';

describe('PortalRestClient: typed calls against the emulated portal', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('binds online and offline handlers idempotently, lists them and unbinds them', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    const handler = `${h.app.url}/bitrix24/events`;

    await expect(
      client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' }),
    ).resolves.toBe('bound');
    await expect(
      client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' }),
    ).resolves.toBe('already_bound');
    await expect(
      client.eventBind({ event: 'ONOFFLINEEVENT', handler, options: { minTimeout: 5 } }),
    ).resolves.toBe('bound');

    const bound = await client.eventGet();
    expect(bound).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'ONCRMDEALUPDATE', offline: 1 }),
        expect.objectContaining({ event: 'ONOFFLINEEVENT', handler, offline: 0 }),
      ]),
    );
    const stats = await h.emulator.control.stats(portal.memberId);
    expect(stats.bindings.find((binding) => binding.event === 'ONOFFLINEEVENT')?.options).toEqual({
      minTimeout: 5,
    });

    await expect(
      client.eventUnbind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' }),
    ).resolves.toBe(1);
    await expect(
      client.eventUnbind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' }),
    ).resolves.toBe(0);
  });

  it('reserves a batch with clear=0, shows it in event.offline.list, and clears it', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    await client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 3, notify: false });

    const page = await client.offlineGet({ limit: 10, clear: false });
    expect(page.events).toHaveLength(3);
    expect(page.process_id).toMatch(/^[a-z0-9]{32}$/);

    const listed = await client.offlineList();
    expect(listed.total).toBe(3);
    expect(listed.rows.every((row) => row.PROCESS_ID === page.process_id)).toBe(true);
    expect(listed.next).toBeUndefined();

    const again = await client.offlineGet({ limit: 10, clear: false, processId: page.process_id! });
    expect(again.events.map((event) => event.ID)).toEqual(page.events.map((event) => event.ID));

    await client.offlineClear({ processId: page.process_id!, ids: [Number(page.events[0].ID)] });
    expect((await client.offlineList()).total).toBe(2);
    await client.offlineClear({ processId: page.process_id! });
    expect((await h.emulator.control.stats(portal.memberId)).queue.total).toBe(0);
  });

  it('releases rows as failed with event.offline.error, to be fetched with error=1', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    await client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2, notify: false });
    const page = await client.offlineGet({ limit: 10, clear: false });

    await client.offlineError({
      processId: page.process_id!,
      messageIds: [page.events[0].MESSAGE_ID],
    });

    const failed = await client.offlineGet({ limit: 10, clear: true, error: true });
    expect(failed.events.map((event) => event.MESSAGE_ID)).toEqual([page.events[0].MESSAGE_ID]);
  });

  it('runs a batch of 120 commands as 3 requests, with results and errors keyed as asked', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    const commands: Record<string, BatchCommand> = Object.fromEntries(
      Array.from({ length: 119 }, (_, index) => [`info${index}`, { method: 'app.info' }]),
    );
    commands.feature = { method: 'feature.get', params: { CODE: 'rest_offline_extended' } };
    commands.broken = { method: 'no.such.method' };

    const batch = await client.batch(commands);

    expect(Object.keys(batch.result)).toHaveLength(120);
    expect(batch.result.feature).toEqual({ value: 'Y' });
    expect(Object.keys(batch.errors)).toEqual(['broken']);
    expect(batch.errors.broken.error).toBe('ERROR_METHOD_NOT_FOUND');
    expect((await h.emulator.control.stats(portal.memberId)).httpRequests).toBe(3);
  });

  it('with halt, stops at the first failing command', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const batch = await restClient(h.app, portal.memberId).batch(
      { broken: { method: 'no.such.method' }, after: { method: 'app.info' } },
      { halt: true },
    );
    expect(Object.keys(batch.errors)).toEqual(['broken']);
    expect(batch.result).toEqual({});
  });

  it('clears one page and reserves the next in a single request, as the drain does', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app);
    const client = restClient(h.app, portal.memberId);
    await client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
    await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 4, notify: false });
    const first = await client.offlineGet({ limit: 2, clear: false });
    const before = await h.emulator.control.stats(portal.memberId);

    const batch = await client.batch({
      clear: { method: 'event.offline.clear', params: { process_id: first.process_id } },
      next: { method: 'event.offline.get', params: { limit: 2, clear: 0 } },
    });

    const after = await h.emulator.control.stats(portal.memberId);
    expect(after.httpRequests - before.httpRequests).toBe(1);
    expect(batch.errors).toEqual({});
    expect((batch.result.next as { events: unknown[] }).events).toHaveLength(2);
    expect(after.queue.total).toBe(2);
  });

  it('answers feature.get as a boolean and app.info as Bitrix24 sends it', async () => {
    const portal = await installPortalDirectly(h.emulator, h.app, {
      portal: { features: { rest_offline_extended: false } },
    });
    const client = restClient(h.app, portal.memberId);
    await expect(client.featureGet('rest_offline_extended')).resolves.toBe(false);
    await expect(client.featureGet('rest_auth_connector')).resolves.toBe(false);
    await expect(client.appInfo()).resolves.toMatchObject({ INSTALLED: true, STATUS: 'F' });
  });

  describe('with BITRIX24_AUTH_CONNECTOR', () => {
    let withConnector: TestApp;

    beforeAll(async () => {
      withConnector = await h.startReplica({ BITRIX24_AUTH_CONNECTOR: 'vendor_sync' });
    });

    it('adds it to offline binds and offline-queue calls, batches included, and to nothing else', async () => {
      const portal = await installPortalDirectly(h.emulator, h.app, {
        portal: { plan: 'enterprise' },
      });
      const client = restClient(withConnector, portal.memberId);
      await client.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
      await client.eventBind({
        event: 'ONOFFLINEEVENT',
        handler: `${withConnector.url}/bitrix24/events`,
      });
      const { bindings } = await h.emulator.control.stats(portal.memberId);
      expect(bindings.find((binding) => binding.offline)?.connectorId).toBe('vendor_sync');
      expect(bindings.find((binding) => !binding.offline)?.connectorId).toBe('');

      await h.emulator.control.enqueueOfflineEvents(portal.memberId, { count: 2, notify: false });
      // Without the connector the queue looks empty: our rows are under the connector.
      expect((await restClient(h.app, portal.memberId).offlineList()).total).toBe(0);
      const page = await client.offlineGet({ limit: 10, clear: false });
      expect(page.events).toHaveLength(2);

      const batch = await client.batch({
        clear: { method: 'event.offline.clear', params: { process_id: page.process_id } },
        next: { method: 'event.offline.get', params: { limit: 10, clear: 0 } },
      });
      expect(batch.errors).toEqual({});
      expect((await h.emulator.control.stats(portal.memberId)).queue.total).toBe(0);
    });
  });
});
