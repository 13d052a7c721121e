import { ConfigurationError, loadConfig } from './app-config';

const VALID = {
  BITRIX24_CLIENT_ID: 'local.app',
  BITRIX24_CLIENT_SECRET: 'secret',
  TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('accepts a valid environment and applies the documented defaults', () => {
    const config = loadConfig(VALID);
    expect(config.http).toEqual({
      host: '0.0.0.0',
      port: 3000,
      bodyLimitBytes: 1048576,
      trustProxy: false,
    });
    expect(config.appBaseUrl).toBe('http://localhost:3000');
    expect(config.database).toEqual({ url: undefined, dataDir: './.data' });
    expect(config.bitrix24.oauthUrl).toBe('https://oauth.bitrix.info');
    expect(config.bitrix24.offlineEvents).toHaveLength(12);
    expect(config.bitrix24.offlineEvents).toContain('ONCRMLEADDELETE');
    expect(config.bitrix24.offlineMinTimeout).toBe(1);
    expect(config.bitrix24.rateLimit).toEqual({ rps: 2, burst: 50 });
    expect(config.drain.pageSize).toBe(50);
    expect(config.drain.maxPageSize).toBe(1000);
    expect(config.bitrix24.operatingLimitSeconds).toBe(480);
    expect(config.drain.pollIntervalSeconds).toBe(60);
    expect(config.admin.token).toBeUndefined();
    expect(config.eventHandlerUrl).toBe('http://localhost:3000/bitrix24/events');
  });

  it('reports a missing client id and a malformed encryption key together, in one error', () => {
    const problems = problemsOf({
      BITRIX24_CLIENT_SECRET: 'secret',
      TOKEN_ENCRYPTION_KEY: 'not-base64-of-32-bytes',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'BITRIX24_CLIENT_ID is required',
        expect.stringMatching(/^TOKEN_ENCRYPTION_KEY must be base64 of exactly 32 bytes/),
      ]),
    );
    expect(() => loadConfig({ BITRIX24_CLIENT_SECRET: 'secret' })).toThrow(
      /Invalid configuration:\n {2}- BITRIX24_CLIENT_ID is required/,
    );
  });

  it('requires an encryption key in production', () => {
    const withoutKey = { ...VALID, TOKEN_ENCRYPTION_KEY: undefined };
    expect(problemsOf({ ...withoutKey, NODE_ENV: 'production' })).toEqual([
      expect.stringMatching(/TOKEN_ENCRYPTION_KEY/),
    ]);
    expect(problemsOf(withoutKey)).toEqual([]);
  });

  it('parses numbers and lists, and rejects values out of range', () => {
    const config = loadConfig({
      ...VALID,
      PORT: '8080',
      BITRIX24_OFFLINE_EVENTS: ' onCrmDealAdd, ONCRMDEALUPDATE ,',
      BITRIX24_RATE_LIMIT_RPS: '5',
      BITRIX24_RATE_LIMIT_BURST: '250',
      POLL_INTERVAL_SECONDS: '0',
    });
    expect(config.http.port).toBe(8080);
    expect(config.bitrix24.offlineEvents).toEqual(['ONCRMDEALADD', 'ONCRMDEALUPDATE']);
    expect(config.bitrix24.rateLimit).toEqual({ rps: 5, burst: 250 });
    expect(config.drain.pollIntervalSeconds).toBe(0);

    const problems = problemsOf({
      ...VALID,
      PORT: 'eighty',
      DRAIN_PAGE_SIZE: '0',
      ADMIN_TOKEN: 'short',
      DATABASE_URL: 'mysql://x',
      BITRIX24_OAUTH_URL: 'oauth.bitrix.info',
      BITRIX24_OFFLINE_EVENTS: 'ONCRMDEALADD,bad name',
    });
    expect(problems).toHaveLength(6);
  });

  it('lets backlog pages grow from DRAIN_PAGE_SIZE to DRAIN_MAX_PAGE_SIZE, never below it or past 10,000', () => {
    const config = loadConfig({
      ...VALID,
      DRAIN_PAGE_SIZE: '100',
      DRAIN_MAX_PAGE_SIZE: '5000',
      BITRIX24_OPERATING_LIMIT_SECONDS: '420',
    });
    expect(config.drain).toMatchObject({ pageSize: 100, maxPageSize: 5000 });
    expect(config.bitrix24.operatingLimitSeconds).toBe(420);
    expect(loadConfig({ ...VALID, DRAIN_MAX_PAGE_SIZE: '50' }).drain.maxPageSize).toBe(50);
    expect(problemsOf({ ...VALID, DRAIN_PAGE_SIZE: '200', DRAIN_MAX_PAGE_SIZE: '100' })).toEqual([
      expect.stringContaining('DRAIN_MAX_PAGE_SIZE must be at least DRAIN_PAGE_SIZE'),
    ]);
    expect(problemsOf({ ...VALID, DRAIN_MAX_PAGE_SIZE: '10001' })).toEqual([
      expect.stringContaining('DRAIN_MAX_PAGE_SIZE'),
    ]);
    expect(problemsOf({ ...VALID, BITRIX24_OPERATING_LIMIT_SECONDS: '0' })).toEqual([
      expect.stringContaining('BITRIX24_OPERATING_LIMIT_SECONDS'),
    ]);
  });

  it('runs retention every 600 s by default and refuses an interval out of range', () => {
    expect(loadConfig(VALID).retentionIntervalSeconds).toBe(600);
    expect(
      loadConfig({ ...VALID, RETENTION_INTERVAL_SECONDS: '60' }).retentionIntervalSeconds,
    ).toBe(60);
    for (const value of ['0', '86401', 'often']) {
      expect(problemsOf({ ...VALID, RETENTION_INTERVAL_SECONDS: value })).toEqual([
        expect.stringMatching(/^RETENTION_INTERVAL_SECONDS /),
      ]);
    }
  });

  it('keeps each portal bucket in Postgres unless told memory, and refuses other stores', () => {
    expect(loadConfig(VALID).bitrix24.rateLimitStore).toBe('postgres');
    expect(
      loadConfig({ ...VALID, BITRIX24_RATE_LIMIT_STORE: 'memory' }).bitrix24.rateLimitStore,
    ).toBe('memory');
    expect(problemsOf({ ...VALID, BITRIX24_RATE_LIMIT_STORE: 'redis' })).toEqual([
      expect.stringContaining('BITRIX24_RATE_LIMIT_STORE'),
    ]);
  });
});
