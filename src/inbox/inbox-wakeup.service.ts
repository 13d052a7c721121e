import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AppLogger } from '../logging/app-logger';
import { InboxWorker } from './inbox-worker.service';

/** The Postgres channel a stored event is announced on. */
export const INBOX_CHANNEL = 'inbox_events';
const RECONNECT_MIN_MS = 500;
/**
 * Stored events are announced at most this often per replica: under a flood one NOTIFY stands for
 * many events (and NOTIFY's commit-time lock stays off the hot path); a lone event waits this long.
 */
const ANNOUNCE_COALESCE_MS = 10;
const RECONNECT_MAX_MS = 30_000;

/**
 * Wakes the inbox workers of every replica when one commits new events: each replica LISTENs on
 * `inbox_events` over one dedicated connection, and after storing events (committed) announces
 * them with a NOTIFY, coalesced. When the connection is down the workers still poll every
 * INBOX_POLL_INTERVAL_MS, so a lost wake-up costs latency, never an event.
 */
@Injectable()
export class InboxWakeup implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log: Logger;
  private client: Client | undefined;
  private stopped = false;
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private announceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly worker: InboxWorker,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('inbox');
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.connect();
  }

  /** Events were committed: tell the other replicas' workers (soon, once for a burst). */
  announce(): void {
    if (this.announceTimer !== undefined || this.stopped) return;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = undefined;
      this.dataSource
        .query(`SELECT pg_notify('${INBOX_CHANNEL}', '')`)
        .catch((error: unknown) =>
          this.log.warn({ err: error }, 'stored events not announced; other replicas will poll'),
        );
    }, ANNOUNCE_COALESCE_MS);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.announceTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const options = this.dataSource.options as { url?: string };
    const client = new Client({ connectionString: options.url, keepAlive: true });
    client.on('notification', (message) => {
      if (message.channel === INBOX_CHANNEL) this.worker.wake();
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${INBOX_CHANNEL}`);
    } catch (error) {
      this.lost(client, error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.reconnectDelayMs = RECONNECT_MIN_MS;
    // Events committed while we were not listening: look now.
    this.worker.wake();
  }

  private lost(client: Client, error?: unknown): void {
    if (this.stopped || (this.client !== undefined && this.client !== client)) return;
    if (this.client === client) this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.reconnectTimer !== undefined) return;
    this.log.warn(
      { err: error, retryInMs: this.reconnectDelayMs },
      'inbox wake-up connection lost; polling until it is back',
    );
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
    this.reconnectDelayMs = Math.min(RECONNECT_MAX_MS, this.reconnectDelayMs * 2);
  }
}
