import { Bitrix24Client } from '../../src/bitrix24/bitrix24.client';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { installPortalDirectly, type DirectlyInstalledPortal } from '../support/portal-fixtures';
import {
  startTestApp,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  type TestApp,
} from '../support/test-app';
import { createBenchDatabase, type BenchDatabase } from './bench-environment';

export interface OnePortalDrainBench {
  database: BenchDatabase;
  emulator: RunningEmulator;
  app: TestApp;
  portal: DirectlyInstalledPortal;
  close(): Promise<void>;
}

/**
 * The setting of the one-portal drain benchmarks: a fresh database, the emulator and the app at the
 * same limits, one installed portal with ONCRMDEALUPDATE bound offline and `events` of it queued
 * (without a notification: the benchmark starts the drain itself).
 */
export async function startOnePortalDrainBench(options: {
  rps: number;
  burst: number;
  pageSize: number;
  events: number;
  env?: Record<string, string>;
}): Promise<OnePortalDrainBench> {
  const database = await createBenchDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    rateLimit: { rps: options.rps, burst: options.burst },
  });
  const app = await startTestApp({
    databaseUrl: database.url,
    env: {
      LOG_LEVEL: 'warn',
      BITRIX24_OAUTH_URL: emulator.url,
      BITRIX24_RATE_LIMIT_RPS: String(options.rps),
      BITRIX24_RATE_LIMIT_BURST: String(options.burst),
      DRAIN_PAGE_SIZE: String(options.pageSize),
      ...options.env,
    },
  });
  const close = async (): Promise<void> => {
    await app.close();
    await emulator.close();
    await database.drop();
  };
  try {
    const portal = await installPortalDirectly(emulator, app);
    await app.app
      .get(Bitrix24Client)
      .operationsFor(portal.memberId)
      .eventBind({ event: 'ONCRMDEALUPDATE', eventType: 'offline' });
    await emulator.control.enqueueOfflineEvents(portal.memberId, {
      count: options.events,
      event: 'ONCRMDEALUPDATE',
      notify: false,
    });
    return { database, emulator, app, portal, close };
  } catch (error) {
    await close();
    throw error;
  }
}
