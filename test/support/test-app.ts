import { Writable } from 'node:stream';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AppModuleOptions } from '../../src/app.module';
import { createApp } from '../../src/bootstrap';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { AppLogger, createPinoLogger } from '../../src/logging/app-logger';
import { freePort } from '../../src/database/embedded-postgres';

export { freePort };

export const TEST_CLIENT_ID = 'test.app.local';
export const TEST_CLIENT_SECRET = 'test-client-secret-0123456789';
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123456789';
export const TEST_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

export interface TestApp {
  app: NestFastifyApplication;
  url: string;
  config: AppConfig;
  /** Every log line this app wrote (JSON), for assertions such as "no token is ever logged". */
  logs: string[];
  close(): Promise<void>;
}

/**
 * The settings every test server starts from: loopback on `port` (which APP_BASE_URL names), the
 * test credentials, no fallback poller, debug logs. Callers add or override what they test.
 */
export function testAppEnvironment(port: number, databaseUrl: string): Record<string, string> {
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    APP_BASE_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    BITRIX24_CLIENT_ID: TEST_CLIENT_ID,
    BITRIX24_CLIENT_SECRET: TEST_CLIENT_SECRET,
    TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    POLL_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'debug',
  };
}

/**
 * Boots the real AppModule on 127.0.0.1 with a fixed port chosen up front, so APP_BASE_URL (the
 * handler URL given to event.bind) is known before start.
 */
export async function startTestApp(options: {
  databaseUrl: string;
  env?: Record<string, string | undefined>;
  /** Vendor handler modules to start the app with (AppModuleOptions.vendorModules). */
  vendorModules?: AppModuleOptions['vendorModules'];
}): Promise<TestApp> {
  const port = await freePort();
  const config = loadConfig({
    ...testAppEnvironment(port, options.databaseUrl),
    ...options.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = new AppLogger(createPinoLogger(config.logLevel, sink));
  const app = await createApp({
    config,
    databaseUrl: options.databaseUrl,
    logger,
    vendorModules: options.vendorModules,
  });
  await app.listen({ port, host: '127.0.0.1' });
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    config,
    logs,
    close: () => app.close(),
  };
}
