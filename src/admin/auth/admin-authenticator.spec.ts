import { Writable } from 'node:stream';
import { Pool } from 'pg';
import pino from 'pino';
import { Counter } from 'prom-client';
import { loadConfig } from '../../config/app-config';
import { AppLogger, createPinoLogger } from '../../logging/app-logger';
import { MetricsRegistry } from '../../metrics/metrics.registry';
import { SharedLimits } from '../../shared-limits/shared-limits';
import {
  AdminApiDisabledError,
  AdminUnauthenticatedError,
  TooManyFailedAttemptsError,
} from '../admin.errors';
import { AdminAuthenticator, bearerTokenOf } from './admin-authenticator';

const TOKEN = 'an-admin-token-of-at-least-32-characters';

/**
 * Limits whose database refuses every connection: the memory fallback counts, as it does while
 * the database is away.
 */
function limitsWithoutDatabase(): SharedLimits {
  return new SharedLimits(
    new Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }),
    pino({ level: 'silent' }),
    new Counter({ name: 'unused_store_failures', help: 'unused', registers: [] }),
  );
}

function authenticatorWith(env: Record<string, string | undefined>): {
  authenticator: AdminAuthenticator;
  logs: string[];
  metrics: MetricsRegistry;
} {
  const config = loadConfig({
    BITRIX24_CLIENT_ID: 'id',
    BITRIX24_CLIENT_SECRET: 'secret',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'));
      callback();
    },
  });
  const metrics = new MetricsRegistry();
  const authenticator = new AdminAuthenticator(
    config,
    new AppLogger(createPinoLogger('info', sink)),
    metrics,
    limitsWithoutDatabase(),
  );
  return { authenticator, logs, metrics };
}

const request = (authorization?: string, ip = '192.0.2.1') => ({
  ip,
  authorization,
  route: '/admin/stats',
});

describe('bearerTokenOf', () => {
  it.each([
    [`Bearer ${TOKEN}`, TOKEN],
    [`bearer ${TOKEN}`, TOKEN],
    [`Bearer   ${TOKEN}  `, TOKEN],
    [`Basic ${TOKEN}`, undefined],
    [TOKEN, undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    [undefined, undefined],
  ])('reads %j as %j', (header, expected) => {
    expect(bearerTokenOf(header)).toBe(expected);
  });

  it('ignores repeated headers', () => {
    expect(bearerTokenOf([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`])).toBeUndefined();
  });
});

describe('AdminAuthenticator', () => {
  it('accepts the configured token', async () => {
    const { authenticator } = authenticatorWith({ ADMIN_TOKEN: TOKEN });
    await expect(authenticator.authenticate(request(`Bearer ${TOKEN}`))).resolves.toBeUndefined();
  });

  it('refuses everything when ADMIN_TOKEN is not configured', async () => {
    const { authenticator } = authenticatorWith({});
    await expect(authenticator.authenticate(request(`Bearer ${TOKEN}`))).rejects.toThrow(
      AdminApiDisabledError,
    );
  });

  it.each([
    ['missing', undefined, 'missing_bearer_token'],
    ['shorter', `Bearer ${TOKEN.slice(1)}`, 'invalid_bearer_token'],
    ['longer', `Bearer ${TOKEN}x`, 'invalid_bearer_token'],
    ['different case', `Bearer ${TOKEN.toUpperCase()}`, 'invalid_bearer_token'],
  ])('refuses a %s token with its code', async (_label, header, code) => {
    const { authenticator } = authenticatorWith({ ADMIN_TOKEN: TOKEN });
    try {
      await authenticator.authenticate(request(header));
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(AdminUnauthenticatedError);
      expect((error as AdminUnauthenticatedError).code).toBe(code);
    }
  });

  it('answers 429 to wrong tokens from a throttled address but lets the right token through', async () => {
    const { authenticator, logs, metrics } = authenticatorWith({
      ADMIN_TOKEN: TOKEN,
      ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: '2',
    });
    for (const guess of ['guess-1', 'guess-2']) {
      await expect(authenticator.authenticate(request(`Bearer ${guess}`))).rejects.toThrow(
        AdminUnauthenticatedError,
      );
    }
    await expect(authenticator.authenticate(request('Bearer guess-3'))).rejects.toThrow(
      TooManyFailedAttemptsError,
    );
    await expect(authenticator.authenticate(request(`Bearer ${TOKEN}`))).resolves.toBeUndefined();
    await expect(
      authenticator.authenticate(request('Bearer guess-4', '192.0.2.2')),
    ).rejects.toThrow(AdminUnauthenticatedError);
    expect(logs).toHaveLength(3);
    expect(logs.join('')).not.toContain('guess-');
    await expect(
      metrics.registry.getSingleMetricAsString('admin_auth_refusals_total'),
    ).resolves.toContain('reason="rate_limited"} 1');
  });

  it('does not count a missing header as a guess', async () => {
    const { authenticator } = authenticatorWith({
      ADMIN_TOKEN: TOKEN,
      ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: '1',
    });
    for (let attempt = 0; attempt < 5; attempt++) {
      await expect(authenticator.authenticate(request(undefined))).rejects.toThrow(
        AdminUnauthenticatedError,
      );
    }
    await expect(authenticator.authenticate(request(`Bearer ${TOKEN}`))).resolves.toBeUndefined();
  });
});
