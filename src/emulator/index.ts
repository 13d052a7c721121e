import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { RealClock, type Clock } from './clock';
import { EmulatorControlClient } from './control-client';
import { Emulator } from './emulator';
import { buildEmulatorServer } from './emulator-server';
import type { SentEvent } from './portals/portal';
import type { RateLimit } from './rest/leaky-bucket';

export { ManualClock, RealClock, type Clock } from './clock';
export { EmulatorControlClient, EmulatorControlError } from './control-client';
export type * from './control-contract';
export type { RateLimit } from './rest/leaky-bucket';

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  clientId: string;
  clientSecret: string;
  /** Overrides the plan limits (standard 2/50, enterprise 5/250) for every portal. */
  rateLimit?: RateLimit;
  /** Default 3600. */
  accessTokenLifetimeSeconds?: number;
  /** Default 180 days (older portals: 28 days). */
  refreshTokenLifetimeSeconds?: number;
  /** How long the event sender waits for the app's answer; default 5000. */
  senderTimeoutMs?: number;
  /** The app's scopes, comma-separated; default 'crm'. Events outside them cannot be bound. */
  scope?: string;
  /** Default: wall-clock time that the control API can move forward. */
  clock?: Clock;
  /** Called after each event POST, e.g. to log deliveries. */
  onEventSent?: (memberId: string, sent: SentEvent) => void;
}

export interface RunningEmulator {
  /** e.g. http://127.0.0.1:43121, also the OAuth server: the token endpoint is `${url}/oauth/token/`. */
  url: string;
  /** Typed client of the `/_emulator` control API. */
  control: EmulatorControlClient;
  close(): Promise<void>;
}

const DAY_SECONDS = 86_400;

/** Starts a stateful fake Bitrix24 (OAuth server, portals, event sender) on one HTTP port. */
export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1';
  const emulator = new Emulator({
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    rateLimit: options.rateLimit,
    accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 3600,
    refreshTokenLifetimeSeconds: options.refreshTokenLifetimeSeconds ?? 180 * DAY_SECONDS,
    senderTimeoutMs: options.senderTimeoutMs ?? 5000,
    scope: options.scope ?? 'crm',
    clock: options.clock ?? new RealClock(),
    onEventSent: options.onEventSent,
  });
  const server = await buildEmulatorServer(emulator);
  await server.listen({ host, port: options.port ?? 0 });
  const { port } = server.server.address() as AddressInfo;
  const urlOf = (listeningPort: number): string =>
    `http://${host.includes(':') ? `[${host}]` : host}:${listeningPort}`;
  const url = urlOf(port);
  emulator.url = url;
  // More ports for portals that moved their domain: their connections go to the same HTTP server.
  const origins: Server[] = [];
  const sockets = new Set<Socket>();
  emulator.openOrigin = async () => {
    const listener = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      server.server.emit('connection', socket);
    });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(0, host, resolve);
    });
    origins.push(listener);
    return urlOf((listener.address() as AddressInfo).port);
  };
  return {
    url,
    control: new EmulatorControlClient(url),
    close: async () => {
      emulator.close();
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        origins.map((listener) => new Promise((resolve) => listener.close(resolve))),
      );
      await server.close();
    },
  };
}
