import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { eventually } from '../offline-queue/drain-harness';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { freePort } from '../support/test-app';

const ROOT = path.resolve(__dirname, '..', '..');
const REGISTER_TYPESCRIPT = path.join(ROOT, 'scripts', 'register-typescript.js');
const DEMO = path.join(ROOT, 'src', 'demo', 'main.ts');

/**
 * `npm run demo` as a newcomer runs it (here on a test database instead of the embedded one): it
 * installs its portals, drains their trickle of CRM changes, copies the deals with the example
 * handler, prints where to look, and stops cleanly on Ctrl-C.
 */
describe('npm run demo', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('shows the product working and stops on SIGINT', async () => {
    const [appPort, emulatorPort] = [await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      ['--require', REGISTER_TYPESCRIPT, '-e', `require(${JSON.stringify(DEMO)})`],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          DATABASE_URL: database.url,
          PORT: String(appPort),
          EMULATOR_PORT: String(emulatorPort),
          TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const sql = new Client({ connectionString: database.url });
    try {
      await eventually(
        async () => output,
        (text) => text.includes('Demo ready') || child.exitCode !== null,
        60_000,
      );
      expect(output).toContain('Demo ready');
      const token = /Admin token\s+(\S+)/.exec(output)?.[1];
      expect(token).toMatch(/^[0-9a-f]{40}$/);

      const portals = (await (
        await fetch(`http://127.0.0.1:${appPort}/admin/portals`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as { items: { memberId: string; status: string }[] };
      expect(portals.items.map(({ memberId, status }) => ({ memberId, status }))).toEqual([
        { memberId: 'demo-acme', status: 'active' },
        { memberId: 'demo-globex', status: 'active' },
        { memberId: 'demo-initech', status: 'active' },
      ]);

      // The trickle's changes are drained and the example handler copies the deals.
      await sql.connect();
      const copied = await eventually(
        async () =>
          (
            await sql.query<{ portals: number }>(
              'SELECT count(DISTINCT member_id)::int AS portals FROM example_deals',
            )
          ).rows[0].portals,
        (count) => count === 3,
        30_000,
      );
      expect(copied).toBe(3);
    } finally {
      await sql.end().catch(() => undefined);
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(output).toContain('Demo stopped.');
  }, 120_000);
});
