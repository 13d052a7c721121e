import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsOptional,
  IsPositive,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateBy,
  ValidateIf,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
const toNumber = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))
    ? Number(value)
    : value;
const EVENT_NAME = /^[A-Z0-9_]+$/;
const BASE64_32_BYTES = /^[A-Za-z0-9+/]{43}=$/;

/** The raw process environment, as PRODUCT.md names it. Validated once at start-up. */
export class EnvironmentSchema {
  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL?: string;

  @IsString()
  @IsNotEmpty()
  DATA_DIR = './.data';

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  @IsNotEmpty()
  HOST = '0.0.0.0';

  @Transform(({ value }: { value: unknown }) =>
    value === 'true' ? true : value === 'false' ? false : value,
  )
  @IsBoolean({ message: 'TRUST_PROXY must be true or false' })
  TRUST_PROXY = false;

  @Matches(/^https?:\/\/[^/\s]+(\/[^\s]*)?$/, {
    message: 'APP_BASE_URL must be an absolute http(s) URL',
  })
  APP_BASE_URL = 'http://localhost:3000';

  @IsString({ message: 'BITRIX24_CLIENT_ID is required' })
  @IsNotEmpty({ message: 'BITRIX24_CLIENT_ID is required' })
  BITRIX24_CLIENT_ID: string;

  @IsString({ message: 'BITRIX24_CLIENT_SECRET is required' })
  @IsNotEmpty({ message: 'BITRIX24_CLIENT_SECRET is required' })
  BITRIX24_CLIENT_SECRET: string;

  @Matches(/^https?:\/\/[^/\s]+(\/[^\s]*)?$/, {
    message: 'BITRIX24_OAUTH_URL must be an absolute http(s) URL',
  })
  BITRIX24_OAUTH_URL = 'https://oauth.bitrix.info';

  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((name) => name.trim().toUpperCase())
          .filter((name) => name !== '')
      : value,
  )
  @Matches(EVENT_NAME, {
    each: true,
    message: 'BITRIX24_OFFLINE_EVENTS must be a comma list of event names',
  })
  BITRIX24_OFFLINE_EVENTS: string[] = [
    'ONCRMDEALADD',
    'ONCRMDEALUPDATE',
    'ONCRMDEALDELETE',
    'ONCRMCONTACTADD',
    'ONCRMCONTACTUPDATE',
    'ONCRMCONTACTDELETE',
    'ONCRMCOMPANYADD',
    'ONCRMCOMPANYUPDATE',
    'ONCRMCOMPANYDELETE',
    'ONCRMLEADADD',
    'ONCRMLEADUPDATE',
    'ONCRMLEADDELETE',
  ];

  @Transform(toInt)
  @IsInt()
  @Min(0)
  BITRIX24_OFFLINE_MIN_TIMEOUT = 1;

  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{1,64}$/, {
    message: 'BITRIX24_AUTH_CONNECTOR must be 1-64 letters, digits, dots, dashes or underscores',
  })
  BITRIX24_AUTH_CONNECTOR?: string;

  @Transform(toNumber)
  @IsNumber()
  @IsPositive()
  BITRIX24_RATE_LIMIT_RPS = 2;

  @Transform(toNumber)
  @IsNumber()
  @Min(1)
  BITRIX24_RATE_LIMIT_BURST = 50;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  DRAIN_PAGE_SIZE = 50;

  /**
   * The largest event.offline.get page a backlog may grow to (pages double from DRAIN_PAGE_SIZE
   * while they come back full, steered by the portal's operating time). It bounds what one page
   * holds in memory.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000)
  @ValidateBy({
    name: 'notBelowPageSize',
    validator: {
      validate: (value: unknown, args) =>
        typeof value !== 'number' ||
        typeof (args?.object as EnvironmentSchema).DRAIN_PAGE_SIZE !== 'number' ||
        value >= (args?.object as EnvironmentSchema).DRAIN_PAGE_SIZE,
      defaultMessage: () => 'DRAIN_MAX_PAGE_SIZE must be at least DRAIN_PAGE_SIZE',
    },
  })
  DRAIN_MAX_PAGE_SIZE = 1000;

  /**
   * A pass that has run this long while other portals wait for a drain slot ends after its current
   * page (cleared, nothing reserved) and queues again behind them: a deep backlog cannot hold a slot
   * for minutes while thousands of portals wait for their first page.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  DRAIN_PASS_SLICE_SECONDS = 10;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  POLL_INTERVAL_SECONDS = 60;

  /**
   * Processed, discarded and unhandled events (with their attempts) whose last attempt is more
   * than this many days old are deleted, in small batches; 0 keeps everything. Dead, failed and
   * pending events are never deleted by age.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3650)
  RETENTION_DAYS = 30;

  /** How often a replica tries a retention run (one replica at a time runs it). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  RETENTION_INTERVAL_SECONDS = 600;

  @IsOptional()
  @IsString()
  @MinLength(32, { message: 'ADMIN_TOKEN must be at least 32 characters' })
  ADMIN_TOKEN?: string;

  /** Wrong admin bearer tokens accepted per client address and minute before answering 429. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10000)
  ADMIN_AUTH_MAX_FAILURES_PER_MINUTE = 10;

  @ValidateIf(
    (env: EnvironmentSchema) => env.NODE_ENV === 'production' || !!env.TOKEN_ENCRYPTION_KEY,
  )
  @Matches(BASE64_32_BYTES, {
    message:
      'TOKEN_ENCRYPTION_KEY must be base64 of exactly 32 bytes (required when NODE_ENV=production)',
  })
  TOKEN_ENCRYPTION_KEY?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9+/]{43}=(,[A-Za-z0-9+/]{43}=)*$/, {
    message: 'TOKEN_ENCRYPTION_OLD_KEYS must be a comma list of base64 keys of 32 bytes each',
  })
  TOKEN_ENCRYPTION_OLD_KEYS?: string;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(256)
  DRAIN_CONCURRENCY = 16;

  @Transform(toInt)
  @IsInt()
  @Min(5)
  @Max(60)
  DRAIN_LEASE_SECONDS = 30;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(600_000)
  DRAIN_RETRY_BASE_MS = 500;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  DRAIN_RETRY_CAP_MS = 60_000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  INBOX_MAX_ATTEMPTS = 8;

  /**
   * Handler runs at once per replica; also how many events one claim takes, so with fast handlers
   * it sets the inbox's rate (one claim statement per this many runs): 128 lets one replica's inbox
   * keep pace with a drain at full speed on two cores (test/bench/RESULTS.md, fleet). Handlers
   * mostly wait on Bitrix24, paced by each portal's bucket, so a run in flight costs little. 0
   * makes an ingest-only replica: it stores events and leaves their handlers to the others.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(256)
  INBOX_CONCURRENCY = 128;

  /**
   * How often an idle worker looks for due events. New events wake the workers of every replica at
   * once (Postgres LISTEN/NOTIFY), so this bounds only retries coming due and a missed wake-up.
   */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(600_000)
  INBOX_POLL_INTERVAL_MS = 1000;

  /** First retry delay of a failed handler run; each further failure doubles it (capped at 1 h). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  INBOX_RETRY_BASE_SECONDS = 10;

  /**
   * A handler still running after this long is told to stop (its event.signal aborts) and the run
   * counts as failed; its object's next run waits until the handler really ended or its claim lapsed.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  INBOX_HANDLER_TIMEOUT_SECONDS = 60;

  /** Registers the example handlers of src/inbox/example-handlers (off by default). */
  @Transform(({ value }: { value: unknown }) =>
    value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value,
  )
  @IsBoolean({ message: 'EXAMPLE_HANDLERS must be true or false' })
  EXAMPLE_HANDLERS = false;

  /** Test-only: the drain pauses at `<point>:<page>` and logs it, so a test can SIGKILL it there. */
  @IsOptional()
  @Matches(/^(after-get|after-commit|after-batch):[1-9]\d*$/, {
    message: 'DRAIN_TEST_PAUSE_AT must be after-get|after-commit|after-batch:<page number>',
  })
  @ValidateBy({
    name: 'notInProduction',
    validator: {
      validate: (_value, args) => (args?.object as EnvironmentSchema).NODE_ENV !== 'production',
      defaultMessage: () => 'DRAIN_TEST_PAUSE_AT is a test hook, refused when NODE_ENV=production',
    },
  })
  DRAIN_TEST_PAUSE_AT?: string;

  /**
   * Test-only: a robot answer's sender pauses `before-send` (the run committed, bizproc.event.send
   * not called) or `after-send` (Bitrix24 took the answer, not yet recorded as sent) and logs it.
   */
  @IsOptional()
  @IsIn(['before-send', 'after-send'], {
    message: 'ROBOT_ANSWER_TEST_PAUSE_AT must be before-send or after-send',
  })
  @ValidateBy({
    name: 'notInProduction',
    validator: {
      validate: (_value, args) => (args?.object as EnvironmentSchema).NODE_ENV !== 'production',
      defaultMessage: () =>
        'ROBOT_ANSWER_TEST_PAUSE_AT is a test hook, refused when NODE_ENV=production',
    },
  })
  ROBOT_ANSWER_TEST_PAUSE_AT?: string;

  @Transform(toInt)
  @IsInt()
  @Min(60)
  INSTALL_PENDING_TIMEOUT_SECONDS = 3600;

  /** Installation confirmations (OAuth exchange + admin check) one instance runs at once. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  INSTALL_CONFIRMATION_CONCURRENCY = 8;

  /** Installation confirmations one client address may start per minute (confirmed ones are given back). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100000)
  INSTALL_CONFIRMATIONS_PER_ADDRESS_PER_MINUTE = 10;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  REFRESH_TOKEN_LIFETIME_DAYS = 28;

  /** How often the keep-alive looks for refresh tokens near the end of their life; 0 disables it. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  TOKEN_KEEP_ALIVE_INTERVAL_SECONDS = 600;

  /** How often payment_required portals are asked again whether they are paid for; 0 disables it. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  PAYMENT_REQUIRED_PROBE_INTERVAL_SECONDS = 900;

  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(120000)
  BITRIX24_REQUEST_TIMEOUT_MS = 30000;

  /**
   * The shortest wait for an answer to an offline-queue call; above it the wait follows the portal's
   * answer times (capped by BITRIX24_REQUEST_TIMEOUT_MS).
   */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(120000)
  BITRIX24_OFFLINE_REQUEST_TIMEOUT_MIN_MS = 1000;

  /**
   * The portal's operating-time limit: seconds one method may run within 10 minutes before
   * Bitrix24 blocks it with OPERATION_TIME_LIMIT (480 on cloud portals, docs/bitrix24/operating-time.md).
   */
  @Transform(toNumber)
  @IsNumber()
  @Min(1)
  @Max(6000)
  BITRIX24_OPERATING_LIMIT_SECONDS = 480;

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(64 * 1024 * 1024)
  HTTP_BODY_LIMIT_BYTES = 1024 * 1024;

  @IsIn(['keep', 'purge'])
  UNINSTALL_CLEAN_EVENTS: 'keep' | 'purge' = 'keep';

  @IsIn(['development', 'production', 'test'])
  NODE_ENV = 'development';

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  /** `auto`: readable lines when stdout is a terminal, JSON otherwise; `json` or `pretty` force one. */
  @IsIn(['auto', 'json', 'pretty'])
  LOG_FORMAT: 'auto' | 'json' | 'pretty' = 'auto';

  /**
   * Where each portal's leaky bucket lives: `postgres` (one row per portal, shared by every replica)
   * or `memory` (per process; only for a single replica).
   */
  @IsIn(['postgres', 'memory'])
  BITRIX24_RATE_LIMIT_STORE: 'postgres' | 'memory' = 'postgres';

  @IsOptional()
  @Matches(BASE64_32_BYTES, { message: 'APP_SESSION_KEY must be base64 of exactly 32 bytes' })
  APP_SESSION_KEY?: string;

  @IsOptional()
  @IsString()
  APP_UI_DIR?: string;
}
