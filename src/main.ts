import 'reflect-metadata';
import { createApp } from './bootstrap';
import { loadConfigOrExit } from './config/app-config';
import { EmbeddedDatabase, startEmbeddedPostgres } from './database/embedded-postgres';
import { runPendingMigrations } from './database/migrate';
import {
  AppLogger,
  createPinoLogger,
  prettyDestination,
  usesPrettyLogs,
} from './logging/app-logger';
import { startupSummary } from './logging/startup-summary';

/** SIGTERM must end the process within 15 s whatever is in flight (PRODUCT.md invariant 10). */
const SHUTDOWN_DEADLINE_MS = 13_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit(process.env);
  const logger = new AppLogger(
    createPinoLogger(
      config.logLevel,
      usesPrettyLogs(config.logFormat) ? prettyDestination() : undefined,
    ),
  );
  const log = logger.child('main');

  let embedded: EmbeddedDatabase | undefined;
  if (!config.database.url) {
    embedded = await startEmbeddedPostgres(config.database.dataDir, logger.child('database'));
  }
  const databaseUrl = config.database.url ?? embedded!.url;
  const applied = await runPendingMigrations(databaseUrl);
  if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');

  const app = await createApp({ config, databaseUrl, logger });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error('shutdown deadline passed; exiting with work abandoned');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    void (async () => {
      try {
        await app.close();
        await embedded?.stop();
        log.info('stopped');
        process.exit(0);
      } catch (error) {
        log.error({ err: error }, 'error during shutdown');
        process.exit(1);
      }
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  await app.listen({ port: config.http.port, host: config.http.host });
  const url = await app.getUrl();
  const summary = startupSummary(config, { url, databaseUrl, embedded: !!embedded });
  log.info(summary.fields, summary.message);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `Start-up failed: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
