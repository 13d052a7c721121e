import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, testAppEnvironment } from './test-app';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildIfNeeded } = require('../../scripts/build-if-needed.js') as { buildIfNeeded(): void };

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');
/**
 * Compiles each .ts file with swc as it is required (the Jest transform's options), so a test gets
 * the real server process in about a second, without a build and without touching dist/ (which
 * other work may be rebuilding).
 */
const REGISTER_TYPESCRIPT = path.join(ROOT, 'scripts', 'register-typescript.js');
const BUILT_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');

/**
 * The Node.js flags `npm run start:prod` runs the server with unless NODE_OPTIONS is set (its
 * `${NODE_OPTIONS:-…}` default), and so what a benchmark of the production server passes.
 */
export function productionNodeOptions(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const match = /\$\{NODE_OPTIONS:-([^}]*)\}/.exec(pkg.scripts['start:prod']);
  if (!match) throw new Error('the start:prod script sets no default NODE_OPTIONS');
  return match[1].split(' ').filter(Boolean);
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AppProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Every stdout/stderr line of this process (pino JSON lines, mostly). */
  readonly logs: string[];
  readonly exited: Promise<ExitStatus>;
  /** Resolves with the first log line (already written or still to come) the predicate accepts. */
  waitForLog(match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** SIGKILL: no shutdown hook runs, like a crash or an OOM kill. */
  kill(): Promise<ExitStatus>;
  /** SIGTERM, and how long the process took to exit. */
  terminate(): Promise<ExitStatus & { ms: number }>;
}

export interface AppProcessOptions {
  databaseUrl: string;
  /** Defaults to a free port; pass the old one to restart "the same" instance (same APP_BASE_URL). */
  port?: number;
  env?: Record<string, string | undefined>;
  /** How long to wait for the server to listen. */
  startTimeoutMs?: number;
  /**
   * Run the production build (`dist/src/main.js`, built first when older than the sources) instead
   * of compiling the sources on the fly: what benchmarks that measure the server's memory need, since
   * the on-the-fly compiler alone adds tens of MiB to the process.
   */
  built?: boolean;
  /** Extra Node.js flags for the server process (e.g. `--heapsnapshot-signal=SIGUSR2`). */
  nodeArgs?: readonly string[];
}

/** Starts the real server (src/main.ts) as a child process and waits until it listens. */
export async function startAppProcess(options: AppProcessOptions): Promise<AppProcess> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ...testAppEnvironment(port, options.databaseUrl),
  };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  if (options.built) buildIfNeeded();
  const entry = options.built
    ? [BUILT_MAIN]
    : ['--require', REGISTER_TYPESCRIPT, '-e', `require(${JSON.stringify(MAIN)})`];
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const collect = (stream: NodeJS.ReadableStream): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) {
        logs.push(line);
        for (const listener of listeners) listener(line);
      }
    });
  };
  collect(child.stdout!);
  collect(child.stderr!);
  const exited = new Promise<ExitStatus>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const waitForLog = (
    match: RegExp | ((line: string) => boolean),
    timeoutMs = 30_000,
  ): Promise<string> => {
    const accepts = typeof match === 'function' ? match : (line: string) => match.test(line);
    const seen = logs.find(accepts);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no log line matching ${String(match)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (line: string): void => {
        if (!accepts(line)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(line);
      };
      listeners.add(listener);
    });
  };

  // Listening is known from the outside (any LOG_LEVEL): poll the liveness probe.
  const startDeadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    const exitedEarly = await Promise.race([
      exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 100)),
    ]);
    if (exitedEarly) {
      throw new Error(`the app process exited during start:\n${logs.slice(-30).join('\n')}`);
    }
    const live = await fetch(`${url}/health/live`).then(
      (response) => response.ok,
      () => false,
    );
    if (live) break;
    if (Date.now() > startDeadline) {
      child.kill('SIGKILL');
      throw new Error(`the app process did not listen in time:\n${logs.slice(-30).join('\n')}`);
    }
  }

  return {
    url,
    port,
    pid: child.pid!,
    logs,
    exited,
    waitForLog,
    kill: async () => {
      child.kill('SIGKILL');
      return exited;
    },
    terminate: async () => {
      const startedAt = Date.now();
      child.kill('SIGTERM');
      const status = await exited;
      return { ...status, ms: Date.now() - startedAt };
    },
  };
}

/** Parses the pino JSON lines of a process (non-JSON lines are skipped). */
export function logRecords(logs: readonly string[]): Record<string, unknown>[] {
  return logs.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}
