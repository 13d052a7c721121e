import type { AppConfig } from '../config/app-config';

export interface StartupSummary {
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

/** Host, port and database name of a Postgres URL; never its user or password. */
export function describeDatabase(databaseUrl: string, embedded: boolean): string {
  if (embedded) return 'embedded Postgres';
  const url = URL.parse(databaseUrl);
  if (!url) return 'Postgres';
  const database = url.pathname.replace(/^\//, '') || 'postgres';
  return `postgres://${url.host}/${database}`;
}

/** What a newcomer must still set before this instance is of use (or safe) in production. */
export function missingSettings(config: AppConfig): string[] {
  const missing: string[] = [];
  if (config.admin.token === undefined) missing.push('ADMIN_TOKEN (admin API answers 503)');
  if (config.tokenEncryption.key === undefined) {
    missing.push('TOKEN_ENCRYPTION_KEY (a development key in DATA_DIR is used)');
  }
  if (/^https?:\/\/(localhost|127\.0\.0\.1)(:|\/|$)/.test(config.appBaseUrl)) {
    missing.push('APP_BASE_URL (Bitrix24 cannot reach a local address)');
  }
  return missing;
}

/**
 * The one start-up line: where the instance listens, which database and Bitrix24 OAuth server it
 * uses, and what is not configured yet. Secrets never appear in it.
 */
export function startupSummary(
  config: AppConfig,
  runtime: { url: string; databaseUrl: string; embedded: boolean },
): StartupSummary {
  const database = describeDatabase(runtime.databaseUrl, runtime.embedded);
  const missing = missingSettings(config);
  const message =
    `listening on ${runtime.url} · database ${database} · Bitrix24 OAuth ${config.bitrix24.oauthUrl}` +
    (missing.length > 0 ? ` · not configured: ${missing.join(', ')}` : '');
  return {
    message,
    fields: {
      url: runtime.url,
      database,
      embeddedDatabase: runtime.embedded,
      oauthServer: config.bitrix24.oauthUrl,
      eventHandlerUrl: config.eventHandlerUrl,
      notConfigured: missing,
    },
  };
}
