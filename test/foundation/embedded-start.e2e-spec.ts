import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/test-app';

const ROOT = path.resolve(__dirname, '../..');

async function waitForReady(
  url: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early with ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.status === 200) return response;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('npm start without DATABASE_URL', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'b24-start-'));
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves /health/ready from the embedded Postgres and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      BITRIX24_CLIENT_ID: TEST_CLIENT_ID,
      BITRIX24_CLIENT_SECRET: TEST_CLIENT_SECRET,
      POLL_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'warn',
    };
    let output = '';
    child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'start.js')], { cwd: ROOT, env });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

    const ready = await waitForReady(`http://127.0.0.1:${port}/health/ready`, child, 150_000).catch(
      (error: Error) => {
        throw new Error(`${error.message}\n${output}`);
      },
    );
    expect(await ready.json()).toEqual({ status: 'ok', database: 'up', migrations: 'applied' });

    const started = Date.now();
    const exited = new Promise<number | null>((resolve) =>
      child!.once('exit', (code) => resolve(code)),
    );
    child.kill('SIGTERM');
    const code = await exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 200_000);
});
