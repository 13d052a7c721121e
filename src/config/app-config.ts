import path from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { EnvironmentSchema } from './environment.schema';

/** Typed configuration. Code reads settings only through this object (injected as AppConfig). */
export class AppConfig {
  readonly env: 'development' | 'production' | 'test';
  readonly logLevel: string;
  readonly logFormat: 'auto' | 'json' | 'pretty';
  readonly http: { host: string; port: number; bodyLimitBytes: number; trustProxy: boolean };
  readonly appBaseUrl: string;
  readonly database: { url: string | undefined; dataDir: string };
  readonly bitrix24: {
    clientId: string;
    clientSecret: string;
    oauthUrl: string;
    offlineEvents: readonly string[];
    offlineMinTimeout: number;
    authConnector: string | undefined;
    rateLimit: { rps: number; burst: number };
    requestTimeoutMs: number;
    /** The floor of the adaptive wait for offline-queue calls (OfflineCallTimeout). */
    offlineRequestTimeoutMinMs: number;
    /** Seconds a method may run within 10 minutes before Bitrix24 blocks it (OPERATION_TIME_LIMIT). */
    operatingLimitSeconds: number;
    refreshTokenLifetimeDays: number;
    tokenKeepAliveIntervalSeconds: number;
    paymentProbeIntervalSeconds: number;
    rateLimitStore: 'postgres' | 'memory';
  };
  readonly retentionDays: number;
  readonly retentionIntervalSeconds: number;
  readonly drain: {
    pageSize: number;
    /** The largest page a backlog grows to (BacklogPaging); also the bound on a page's memory. */
    maxPageSize: number;
    /** A pass yields its slot after this long when other portals wait (DRAIN_PASS_SLICE_SECONDS). */
    passSliceMs: number;
    pollIntervalSeconds: number;
    concurrency: number;
    leaseSeconds: number;
    /** A failed pass is retried after a jittered delay from this base, doubling per failure. */
    retryBaseMs: number;
    /** The longest wait between retries of a portal that keeps failing. */
    retryCapMs: number;
    /** Test-only fault hook (`<point>:<page>`): the drain stops there so a test can SIGKILL it. */
    testPauseAt: string | undefined;
  };
  readonly robots: {
    /** Test-only fault hook (`before-send` | `after-send`): the answer's sender stops there. */
    answerTestPauseAt: 'before-send' | 'after-send' | undefined;
  };
  readonly inbox: {
    maxAttempts: number;
    concurrency: number;
    pollIntervalMs: number;
    retryBaseSeconds: number;
    exampleHandlers: boolean;
    handlerTimeoutSeconds: number;
  };
  readonly portals: {
    installPendingTimeoutSeconds: number;
    uninstallCleanEvents: 'keep' | 'purge';
    confirmationConcurrency: number;
    confirmationsPerAddressPerMinute: number;
  };
  readonly admin: { token: string | undefined; maxFailedAttemptsPerMinute: number };
  readonly tokenEncryption: { key: string | undefined; oldKeys: readonly string[] };
  readonly appFrame: { sessionKey: string | undefined; uiDir: string };

  constructor(values: Omit<AppConfig, 'eventHandlerUrl'>) {
    Object.assign(this, values);
  }

  /** The URL Bitrix24 posts every event to. */
  get eventHandlerUrl(): string {
    return `${this.appBaseUrl.replace(/\/+$/, '')}/bitrix24/events`;
  }
}

export class ConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigurationError';
  }
}

/** One line per variable, however many of its rules it breaks. */
function flatten(errors: ValidationError[]): string[] {
  return errors.flatMap((error) => [
    ...(error.constraints
      ? [[...new Set(Object.values(error.constraints))].reverse().join('; ')]
      : []),
    ...flatten(error.children ?? []),
  ]);
}

/** Validates the whole environment at once and reports every problem in one error. */
export function loadConfig(env: Record<string, string | undefined>): AppConfig {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const schema = plainToInstance(EnvironmentSchema, present, { exposeDefaultValues: true });
  const problems = flatten(validateSync(schema, { forbidUnknownValues: false }));
  if (problems.length > 0) throw new ConfigurationError(problems);

  return new AppConfig({
    env: schema.NODE_ENV as AppConfig['env'],
    logLevel: schema.LOG_LEVEL,
    logFormat: schema.LOG_FORMAT,
    http: {
      host: schema.HOST,
      port: schema.PORT,
      bodyLimitBytes: schema.HTTP_BODY_LIMIT_BYTES,
      trustProxy: schema.TRUST_PROXY,
    },
    appBaseUrl: schema.APP_BASE_URL,
    database: { url: schema.DATABASE_URL, dataDir: schema.DATA_DIR },
    bitrix24: {
      clientId: schema.BITRIX24_CLIENT_ID,
      clientSecret: schema.BITRIX24_CLIENT_SECRET,
      oauthUrl: schema.BITRIX24_OAUTH_URL.replace(/\/+$/, ''),
      offlineEvents: schema.BITRIX24_OFFLINE_EVENTS,
      offlineMinTimeout: schema.BITRIX24_OFFLINE_MIN_TIMEOUT,
      authConnector: schema.BITRIX24_AUTH_CONNECTOR,
      rateLimit: { rps: schema.BITRIX24_RATE_LIMIT_RPS, burst: schema.BITRIX24_RATE_LIMIT_BURST },
      requestTimeoutMs: schema.BITRIX24_REQUEST_TIMEOUT_MS,
      offlineRequestTimeoutMinMs: schema.BITRIX24_OFFLINE_REQUEST_TIMEOUT_MIN_MS,
      operatingLimitSeconds: schema.BITRIX24_OPERATING_LIMIT_SECONDS,
      refreshTokenLifetimeDays: schema.REFRESH_TOKEN_LIFETIME_DAYS,
      tokenKeepAliveIntervalSeconds: schema.TOKEN_KEEP_ALIVE_INTERVAL_SECONDS,
      paymentProbeIntervalSeconds: schema.PAYMENT_REQUIRED_PROBE_INTERVAL_SECONDS,
      rateLimitStore: schema.BITRIX24_RATE_LIMIT_STORE,
    },
    retentionDays: schema.RETENTION_DAYS,
    retentionIntervalSeconds: schema.RETENTION_INTERVAL_SECONDS,
    drain: {
      pageSize: schema.DRAIN_PAGE_SIZE,
      maxPageSize: schema.DRAIN_MAX_PAGE_SIZE,
      passSliceMs: schema.DRAIN_PASS_SLICE_SECONDS * 1000,
      pollIntervalSeconds: schema.POLL_INTERVAL_SECONDS,
      concurrency: schema.DRAIN_CONCURRENCY,
      leaseSeconds: schema.DRAIN_LEASE_SECONDS,
      retryBaseMs: schema.DRAIN_RETRY_BASE_MS,
      retryCapMs: Math.max(schema.DRAIN_RETRY_CAP_MS, schema.DRAIN_RETRY_BASE_MS),
      testPauseAt: schema.DRAIN_TEST_PAUSE_AT,
    },
    robots: {
      answerTestPauseAt:
        schema.ROBOT_ANSWER_TEST_PAUSE_AT as AppConfig['robots']['answerTestPauseAt'],
    },
    inbox: {
      maxAttempts: schema.INBOX_MAX_ATTEMPTS,
      concurrency: schema.INBOX_CONCURRENCY,
      pollIntervalMs: schema.INBOX_POLL_INTERVAL_MS,
      retryBaseSeconds: schema.INBOX_RETRY_BASE_SECONDS,
      exampleHandlers: schema.EXAMPLE_HANDLERS,
      handlerTimeoutSeconds: schema.INBOX_HANDLER_TIMEOUT_SECONDS,
    },
    portals: {
      installPendingTimeoutSeconds: schema.INSTALL_PENDING_TIMEOUT_SECONDS,
      uninstallCleanEvents: schema.UNINSTALL_CLEAN_EVENTS,
      confirmationConcurrency: schema.INSTALL_CONFIRMATION_CONCURRENCY,
      confirmationsPerAddressPerMinute: schema.INSTALL_CONFIRMATIONS_PER_ADDRESS_PER_MINUTE,
    },
    admin: {
      token: schema.ADMIN_TOKEN,
      maxFailedAttemptsPerMinute: schema.ADMIN_AUTH_MAX_FAILURES_PER_MINUTE,
    },
    tokenEncryption: {
      key: schema.TOKEN_ENCRYPTION_KEY,
      oldKeys: schema.TOKEN_ENCRYPTION_OLD_KEYS?.split(',') ?? [],
    },
    appFrame: {
      sessionKey: schema.APP_SESSION_KEY,
      uiDir: path.resolve(schema.APP_UI_DIR ?? 'public/app'),
    },
  });
}

/** For command-line entry points: one message listing every problem on stderr, then exit 1. */
export function loadConfigOrExit(env: Record<string, string | undefined>): AppConfig {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
