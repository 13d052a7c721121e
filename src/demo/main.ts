import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { createApp } from '../bootstrap';
import { loadConfigOrExit } from '../config/app-config';
import { EmbeddedDatabase, startEmbeddedPostgres } from '../database/embedded-postgres';
import { runPendingMigrations } from '../database/migrate';
import { startEmulator, type RunningEmulator } from '../emulator';
import {
  AppLogger,
  createPinoLogger,
  prettyDestination,
  usesPrettyLogs,
} from '../logging/app-logger';

const DEMO_PORTALS = [
  { memberId: 'demo-acme', domain: 'acme.bitrix24.test' },
  { memberId: 'demo-globex', domain: 'globex.bitrix24.test' },
  { memberId: 'demo-initech', domain: 'initech.bitrix24.test', plan: 'enterprise' as const },
];
const DEALS_PER_PORTAL = 20;
/** A user somewhere changes a few deals this often. */
const TRICKLE_MS = 3000;

/**
 * `npm run demo`: the whole product on one machine with nothing but Node. An embedded Postgres (or
 * DATABASE_URL), the Bitrix24 emulator, the app with the example handlers, three portals installed
 * the way Bitrix24 installs an app without a UI (ONAPPINSTALL), and a trickle of CRM changes that
 * the app drains and copies. Prints where to look; Ctrl-C stops everything.
 */
async function main(): Promise<void> {
  const appPort = Number(process.env.PORT ?? '3000');
  const emulatorPort = Number(process.env.EMULATOR_PORT ?? '4000');
  const clientId = 'demo.app';
  const clientSecret = randomBytes(16).toString('hex');
  const adminToken = process.env.ADMIN_TOKEN ?? randomBytes(20).toString('hex');
  const emulator = await startEmulator({
    host: process.env.EMULATOR_HOST ?? '127.0.0.1',
    port: emulatorPort,
    clientId,
    clientSecret,
  });

  const config = loadConfigOrExit({
    DATA_DIR: '.demo-data',
    LOG_LEVEL: 'warn',
    ...process.env,
    PORT: String(appPort),
    HOST: process.env.HOST ?? '127.0.0.1',
    APP_BASE_URL: `http://127.0.0.1:${appPort}`,
    BITRIX24_OAUTH_URL: emulator.url,
    BITRIX24_CLIENT_ID: clientId,
    BITRIX24_CLIENT_SECRET: clientSecret,
    ADMIN_TOKEN: adminToken,
    EXAMPLE_HANDLERS: 'true',
  });
  const logger = new AppLogger(
    createPinoLogger(
      config.logLevel,
      usesPrettyLogs(config.logFormat) ? prettyDestination() : undefined,
    ),
  );
  let embedded: EmbeddedDatabase | undefined;
  if (!config.database.url) {
    embedded = await startEmbeddedPostgres(config.database.dataDir, logger.child('database'));
  }
  const databaseUrl = config.database.url ?? embedded!.url;
  await runPendingMigrations(databaseUrl);
  const app = await createApp({ config, databaseUrl, logger });
  await app.listen({ port: config.http.port, host: config.http.host });
  const appUrl = `http://127.0.0.1:${config.http.port}`;

  for (const portal of DEMO_PORTALS)
    await installDemoPortal(emulator, config.eventHandlerUrl, portal);
  const trickle = startTrickle(emulator);

  console.log(`
Demo ready: ${DEMO_PORTALS.length} portals installed on the Bitrix24 emulator, CRM changes every ${TRICKLE_MS / 1000} s.

  Admin API + docs   ${appUrl}/admin/docs     (token below; "Authorize" in the page)
  Admin token        ${adminToken}
  Portals            curl -s -H 'authorization: Bearer ${adminToken}' ${appUrl}/admin/portals
  Stored events      curl -s -H 'authorization: Bearer ${adminToken}' '${appUrl}/admin/events?limit=10'
  Metrics            ${appUrl}/metrics
  Emulator           ${emulator.url}/_emulator/portals/${DEMO_PORTALS[0].memberId}/stats

Ctrl-C stops the app, the emulator${embedded ? ' and the embedded database' : ''}.
`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(trickle);
    void (async () => {
      try {
        await app.close();
        await emulator.close();
        await embedded?.stop();
        console.log('Demo stopped.');
        process.exit(0);
      } catch (error) {
        console.error('Demo did not stop cleanly:', error);
        process.exit(1);
      }
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function installDemoPortal(
  emulator: RunningEmulator,
  handlerUrl: string,
  portal: (typeof DEMO_PORTALS)[number],
): Promise<void> {
  const existing = await emulator.control.createPortal(portal);
  const { delivered } = await emulator.control.install(existing.memberId, {
    mode: 'event',
    handlerUrl,
  });
  if (delivered.status !== 200) {
    throw new Error(`installing ${portal.domain} failed: ${delivered.status} ${delivered.body}`);
  }
  await emulator.control.seedDeals(existing.memberId, {
    deals: Array.from({ length: DEALS_PER_PORTAL }, (_, index) => ({
      TITLE: `${portal.domain.split('.')[0]} deal ${index + 1}`,
      OPPORTUNITY: String(1000 * (index + 1)),
    })),
  });
}

/** Every few seconds, a few deals of each portal change; Bitrix24 queues and notifies. */
function startTrickle(emulator: RunningEmulator): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const portal of DEMO_PORTALS) {
      const ids = Array.from({ length: 3 }, () => 1 + Math.floor(Math.random() * DEALS_PER_PORTAL));
      emulator.control
        .enqueueOfflineEvents(portal.memberId, {
          events: ids.map((id) => ({
            event: 'ONCRMDEALUPDATE',
            data: { FIELDS: { ID: String(id) } },
          })),
        })
        .catch((error: unknown) => console.error('demo trickle failed:', error));
    }
  }, TRICKLE_MS);
  return timer;
}

main().catch((error: unknown) => {
  process.stderr.write(`Demo failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
