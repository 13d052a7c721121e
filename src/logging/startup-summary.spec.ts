import { PassThrough } from 'node:stream';
import { loadConfig } from '../config/app-config';
import { createPinoLogger, prettyDestination, usesPrettyLogs } from './app-logger';
import { describeDatabase, startupSummary } from './startup-summary';

describe('start-up line', () => {
  it('says where it listens, which database and OAuth server, and what is not configured', () => {
    const config = loadConfig({ BITRIX24_CLIENT_ID: 'app', BITRIX24_CLIENT_SECRET: 'secret' });
    const summary = startupSummary(config, {
      url: 'http://127.0.0.1:3000',
      databaseUrl: 'postgres://bitrix:s3cret-password@db.internal:5432/bitrix24',
      embedded: false,
    });
    expect(summary.message).toContain('listening on http://127.0.0.1:3000');
    expect(summary.message).toContain('database postgres://db.internal:5432/bitrix24');
    expect(summary.message).toContain('Bitrix24 OAuth https://oauth.bitrix.info');
    expect(summary.message).toContain('not configured: ADMIN_TOKEN');
    expect(summary.message).toContain('TOKEN_ENCRYPTION_KEY');
    expect(summary.message).toContain('APP_BASE_URL');
    expect(JSON.stringify(summary)).not.toContain('s3cret-password');
  });

  it('lists nothing as missing once everything is set', () => {
    const config = loadConfig({
      BITRIX24_CLIENT_ID: 'app',
      BITRIX24_CLIENT_SECRET: 'secret',
      ADMIN_TOKEN: 'a'.repeat(40),
      TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      APP_BASE_URL: 'https://app.example.com',
    });
    const summary = startupSummary(config, {
      url: 'http://0.0.0.0:3000',
      databaseUrl: '',
      embedded: true,
    });
    expect(summary.message).not.toContain('not configured');
    expect(summary.fields.notConfigured).toEqual([]);
    expect(describeDatabase('', true)).toBe('embedded Postgres');
  });
});

describe('log format', () => {
  it('is readable in a terminal and JSON elsewhere unless forced', () => {
    expect(usesPrettyLogs('auto', true)).toBe(true);
    expect(usesPrettyLogs('auto', false)).toBe(false);
    expect(usesPrettyLogs('json', true)).toBe(false);
    expect(usesPrettyLogs('pretty', false)).toBe(true);
  });

  it('writes one readable line per record, with secrets redacted', () => {
    const out = new PassThrough();
    let written = '';
    out.on('data', (chunk: Buffer) => (written += chunk.toString()));
    const log = createPinoLogger('info', prettyDestination(out, false)).child({
      component: 'main',
    });

    log.info({ memberId: 'abc', access_token: 'tok-secret-123' }, 'portal installed');

    expect(written).toMatch(/INFO.*\[main\] portal installed/);
    expect(written).toContain('"memberId":"abc"');
    expect(written.trim().split('\n')).toHaveLength(1);
    expect(written).not.toContain('tok-secret-123');
    expect(() => JSON.parse(written) as unknown).toThrow();
  });
});
