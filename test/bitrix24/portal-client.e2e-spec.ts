import { Bitrix24ApiError } from '../../src/bitrix24/bitrix24-api.error';
import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import type { BatchCommand } from '../../src/bitrix24/bitrix24.types';
import {
  Bitrix24OutcomeUnknownError,
  methodKind,
  type Bitrix24PortalClient,
} from '../../src/bitrix24/portal-client';
import { InvalidInputError } from '../../src/errors/domain-error';
import { installPortalDirectly } from '../support/portal-fixtures';
import { Bitrix24Harness, startBitrix24Harness } from './bitrix24-harness';

const CONNECTOR = 'vendor_app';

describe('Bitrix24Client.forPortal: the client vendor handlers use', () => {
  let h: Bitrix24Harness;

  beforeAll(async () => {
    h = await startBitrix24Harness({
      env: { BITRIX24_AUTH_CONNECTOR: CONNECTOR },
      // The paging test sends 200 requests: a roomy portal keeps it quick.
      emulatorRateLimit: { rps: 1000, burst: 1000 },
    });
  });

  afterAll(async () => {
    await h?.close();
  });

  const clientFor = (memberId: string): Bitrix24PortalClient =>
    h.app.app.get(Bitrix24Client).forPortal(memberId);

  async function portalWithLimit(): Promise<string> {
    // auth_connector needs the rest_auth_connector feature (Professional plans and up).
    const portal = await installPortalDirectly(h.emulator, h.app, {
      portal: { features: { rest_auth_connector: true } },
      rateLimit: { rps: 1000, burst: 1000 },
    });
    return portal.memberId;
  }

  it('listAll over 10,000 deals returns each once, one request per 50 rows, ID keyset paging', async () => {
    const memberId = await portalWithLimit();
    const { ids } = await h.emulator.control.seedDeals(memberId, { count: 10_000 });
    const before = (await h.emulator.control.requests(memberId)).length;

    const seen: string[] = [];
    for await (const deal of clientFor(memberId).listAll('crm.deal.list', {
      select: ['ID', 'TITLE'],
    })) {
      seen.push(String(deal.ID));
      expect(Object.keys(deal).sort()).toEqual(['ID', 'TITLE']);
    }

    expect(seen).toHaveLength(10_000);
    expect(new Set(seen).size).toBe(10_000);
    expect(seen).toEqual(ids.map(String));
    const requests = (await h.emulator.control.requests(memberId)).slice(before);
    // 200 full pages, then the empty page that ends the list.
    expect(requests.filter((request) => request.method === 'crm.deal.list')).toHaveLength(201);
    // A read carries no auth_connector.
    expect(requests.every((request) => request.authConnector === '')).toBe(true);
  });

  it('listAll keeps the caller filter and pages by offset where asked', async () => {
    const memberId = await portalWithLimit();
    await h.emulator.control.seedDeals(memberId, {
      deals: Array.from({ length: 120 }, (_, index) => ({
        TITLE: `Deal ${index}`,
        STAGE_ID: index % 3 === 0 ? 'WON' : 'NEW',
      })),
    });
    const won: unknown[] = [];
    for await (const deal of clientFor(memberId).listAll('crm.deal.list', {
      filter: { STAGE_ID: 'WON' },
    })) {
      expect(deal.STAGE_ID).toBe('WON');
      won.push(deal.ID);
    }
    expect(won).toHaveLength(40);

    const all: unknown[] = [];
    for await (const deal of clientFor(memberId).listAll(
      'crm.deal.list',
      {},
      { paging: 'offset' },
    )) {
      all.push(deal.ID);
    }
    expect(new Set(all).size).toBe(120);
  });

  it('batch of 120 commands makes 3 requests and reports a failed command without failing the rest', async () => {
    const memberId = await portalWithLimit();
    const { ids } = await h.emulator.control.seedDeals(memberId, { count: 119 });
    const commands: Record<string, BatchCommand> = {};
    for (const id of ids) commands[`deal_${id}`] = { method: 'crm.deal.get', params: { id } };
    commands.missing = { method: 'crm.deal.get', params: { id: 999_999 } };
    const before = (await h.emulator.control.requests(memberId)).length;

    const answer = await clientFor(memberId).batch(commands);

    const requests = (await h.emulator.control.requests(memberId)).slice(before);
    expect(requests.map((request) => [request.method, request.commands])).toEqual([
      ['batch', 50],
      ['batch', 50],
      ['batch', 20],
    ]);
    expect(Object.keys(answer.result)).toHaveLength(119);
    expect(answer.result[`deal_${ids[0]}`]).toMatchObject({ ID: String(ids[0]) });
    expect(Object.keys(answer.errors)).toEqual(['missing']);
    expect(answer.errors.missing).toMatchObject({ error: '', error_description: 'Not found' });
  });

  it('writes carry the auth_connector, so our own changes do not come back as offline events', async () => {
    const memberId = await portalWithLimit();
    const operations = h.app.app.get(Bitrix24Client).operationsFor(memberId);
    await operations.eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
    const client = clientFor(memberId);
    const before = (await h.emulator.control.requests(memberId)).length;

    const created = await client.call<number>('crm.deal.add', { fields: { TITLE: 'Ours' } });
    await client.call('crm.deal.update', { id: created.result, fields: { TITLE: 'Still ours' } });
    await client.batch([
      { method: 'crm.deal.update', params: { id: created.result, fields: { STAGE_ID: 'WON' } } },
    ]);
    await client.call('crm.deal.get', { id: created.result });

    const requests = (await h.emulator.control.requests(memberId)).slice(before);
    expect(requests.map((request) => [request.method, request.authConnector])).toEqual([
      ['crm.deal.add', CONNECTOR],
      ['crm.deal.update', CONNECTOR],
      ['batch', CONNECTOR],
      ['crm.deal.get', ''],
    ]);
    expect((await h.emulator.control.stats(memberId)).queue.total).toBe(0);

    // A user's change in the portal is an event the app does want.
    await h.emulator.control.userAction(memberId, {
      method: 'crm.deal.update',
      params: { id: created.result, fields: { TITLE: 'Theirs' } },
    });
    expect((await h.emulator.control.stats(memberId)).queue.total).toBe(1);
  });

  it('a create whose answer was lost is not sent again: Bitrix24OutcomeUnknownError', async () => {
    const memberId = await portalWithLimit();
    await h.emulator.control.setFaults(memberId, { errorRate: 1, methods: ['crm.deal.add'] });
    const client = clientFor(memberId);
    const before = (await h.emulator.control.requests(memberId)).length;

    const failure = await client
      .call('crm.deal.add', { fields: { TITLE: 'Once' } })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Bitrix24OutcomeUnknownError);
    expect((failure as Bitrix24OutcomeUnknownError).cause.bitrixCode).toBe('INTERNAL_SERVER_ERROR');

    // A batch request that fails as a whole, holding a create, is not sent again either.
    await h.emulator.control.setFaults(memberId, { errorRate: 1 });
    const batchFailure = await client
      .batch({
        first: { method: 'crm.deal.add', params: { fields: { TITLE: 'x' } } },
        second: { method: 'crm.deal.get', params: { id: 1 } },
      })
      .catch((error: unknown) => error);
    expect(batchFailure).toBeInstanceOf(Bitrix24OutcomeUnknownError);
    expect((batchFailure as Bitrix24OutcomeUnknownError).commands).toEqual(['first', 'second']);

    const requests = (await h.emulator.control.requests(memberId)).slice(before);
    expect(requests.filter((request) => request.method === 'crm.deal.add')).toHaveLength(1);
    expect(requests.filter((request) => request.method === 'batch')).toHaveLength(1);

    // An update may be repeated: it is retried until it goes through.
    await h.emulator.control.setFaults(memberId, { errorRate: 1, methods: ['crm.deal.update'] });
    setTimeout(() => void h.emulator.control.clearFaults(memberId), 300);
    const { ids } = await h.emulator.control.seedDeals(memberId, { count: 1 });
    await expect(
      client.call('crm.deal.update', { id: ids[0], fields: { TITLE: 'Retried' } }),
    ).resolves.toMatchObject({ result: true });
    await h.emulator.control.clearFaults(memberId);
  });

  it('refuses the offline-queue methods (the drain owns them) and malformed method names', async () => {
    const memberId = await portalWithLimit();
    const client = clientFor(memberId);
    await expect(client.call('event.offline.get', {})).rejects.toThrow(InvalidInputError);
    await expect(client.batch([{ method: 'Event.Offline.Clear' }])).rejects.toThrow(
      InvalidInputError,
    );
    await expect(client.call('../app.info')).rejects.toThrow(InvalidInputError);
    const requests = await h.emulator.control.requests(memberId);
    expect(requests.filter((request) => /offline/i.test(request.method))).toHaveLength(0);
  });

  it('surfaces Bitrix24 error codes as Bitrix24ApiError', async () => {
    const memberId = await portalWithLimit();
    const failure = await clientFor(memberId)
      .call('crm.deal.get', { id: 424242 })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Bitrix24ApiError);
    expect((failure as Bitrix24ApiError).bitrixCode).toBe('');
    expect((failure as Bitrix24ApiError).description).toBe('Not found');
  });

  it('classifies methods by what they do to the portal', () => {
    expect(methodKind('crm.deal.get')).toBe('read');
    expect(methodKind('crm.deal.list')).toBe('read');
    expect(methodKind('app.info')).toBe('read');
    expect(methodKind('crm.deal.add')).toBe('create');
    expect(methodKind('im.notify')).toBe('create');
    expect(methodKind('crm.deal.update')).toBe('write');
    expect(methodKind('crm.deal.delete')).toBe('write');
  });
});
