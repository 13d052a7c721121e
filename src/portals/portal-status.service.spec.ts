import { Writable } from 'node:stream';
import { DataSource } from 'typeorm';
import { createTestDatabase, TestDatabase } from '../../test/support/postgres';
import { dataSourceOptions } from '../database/data-source-options';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import { MetricsRegistry } from '../metrics/metrics.registry';
import { PORTAL_STATUSES, PortalStatus } from './portal-status';
import { PortalNotFoundError, PortalStatusTransitionError } from './portal-status.error';
import { ALLOWED_TRANSITIONS, PortalStatusService } from './portal-status.service';
import { PortalEntity } from './portal.entity';

describe('PortalStatusService', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let service: PortalStatusService;
  let lines: string[];
  let counter = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = await new DataSource(
      dataSourceOptions(database.url, { poolSize: 4 }),
    ).initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  beforeEach(() => {
    lines = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    service = new PortalStatusService(
      dataSource,
      new AppLogger(createPinoLogger('info', sink)),
      new MetricsRegistry(),
    );
  });

  async function portalIn(status: PortalStatus): Promise<string> {
    counter += 1;
    const memberId = `status-spec-${counter}`;
    await dataSource.getRepository(PortalEntity).insert({
      memberId,
      domain: `p${counter}.example.com`,
      clientEndpoint: `https://p${counter}.example.com/rest/`,
      status,
    });
    return memberId;
  }

  it('allows only explicit transitions, never to the same status', () => {
    for (const from of PORTAL_STATUSES) {
      expect(ALLOWED_TRANSITIONS[from]).not.toContain(from);
    }
    expect(ALLOWED_TRANSITIONS.deleted).toEqual(['new', 'active']);
    expect(ALLOWED_TRANSITIONS.uninstalled).not.toContain('needs_reinstall');
  });

  it('moves the portal, stamps the time and reason, records the change and logs it once', async () => {
    const memberId = await portalIn('active');
    const heard: [string, PortalStatus][] = [];
    service.onTransition((member, status) => heard.push([member, status]));

    await expect(service.transition(memberId, 'needs_reinstall', 'invalid_grant')).resolves.toBe(
      true,
    );

    const portal = await dataSource.getRepository(PortalEntity).findOneByOrFail({ memberId });
    expect(portal).toMatchObject({ status: 'needs_reinstall', statusReason: 'invalid_grant' });
    expect(Date.now() - portal.statusChangedAt.getTime()).toBeLessThan(60_000);
    const changes = await dataSource.query<{ from_status: string; to_status: string }[]>(
      'SELECT from_status, to_status FROM portal_status_changes WHERE member_id = $1',
      [memberId],
    );
    expect(changes).toEqual([{ from_status: 'active', to_status: 'needs_reinstall' }]);
    expect(lines.filter((line) => line.includes('portal status changed'))).toHaveLength(1);
    expect(heard).toEqual([[memberId, 'needs_reinstall']]);
  });

  it('answers false and writes nothing when the portal already is in that status', async () => {
    const memberId = await portalIn('payment_required');
    await expect(service.transition(memberId, 'payment_required', 'again')).resolves.toBe(false);
    const changes = await dataSource.query<unknown[]>(
      'SELECT 1 FROM portal_status_changes WHERE member_id = $1',
      [memberId],
    );
    expect(changes).toHaveLength(0);
    expect(lines).toHaveLength(0);
  });

  it('refuses a forbidden transition and an unknown portal, changing nothing', async () => {
    const memberId = await portalIn('uninstalled');
    await expect(service.transition(memberId, 'needs_reinstall', 'x')).rejects.toBeInstanceOf(
      PortalStatusTransitionError,
    );
    expect(
      (await dataSource.getRepository(PortalEntity).findOneByOrFail({ memberId })).status,
    ).toBe('uninstalled');
    await expect(service.transition('no-such-portal', 'active', 'x')).rejects.toBeInstanceOf(
      PortalNotFoundError,
    );
  });

  it("stamps uninstalled_at on uninstall, and joins the caller's transaction", async () => {
    const memberId = await portalIn('active');
    await dataSource
      .transaction(async (manager) => {
        await service.transition(memberId, 'uninstalled', 'APPLICATION_NOT_FOUND', manager);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect(
      (await dataSource.getRepository(PortalEntity).findOneByOrFail({ memberId })).status,
    ).toBe('active');

    await service.transition(memberId, 'uninstalled', 'APPLICATION_NOT_FOUND');
    const portal = await dataSource.getRepository(PortalEntity).findOneByOrFail({ memberId });
    expect(portal.uninstalledAt).toBeInstanceOf(Date);
  });

  it('serialises concurrent transitions of one portal: exactly one wins', async () => {
    const memberId = await portalIn('active');
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => service.transition(memberId, 'uninstalled', 'race')),
    );
    expect(outcomes.filter(Boolean)).toHaveLength(1);
  });
});
