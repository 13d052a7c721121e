import { createHash } from 'node:crypto';
import qs from 'qs';
import { Client } from 'pg';
import { startEmulator, type CreatedPortal, type RunningEmulator } from '../../src/emulator';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestApp } from '../support/test-app';

/** The real app on a fresh database, pointed at a fresh emulator (its OAuth server). */
export interface Harness {
  database: TestDatabase;
  emulator: RunningEmulator;
  app: TestApp;
  /** Raw SQL on the app's database: assertions read the tables, not the app's own answers. */
  sql: Client;
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const database = await createTestDatabase();
  const emulator = await startEmulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
  });
  const app = await startTestApp({
    databaseUrl: database.url,
    env: { BITRIX24_OAUTH_URL: emulator.url, ...env },
  });
  const sql = new Client({ connectionString: database.url });
  await sql.connect();
  return {
    database,
    emulator,
    app,
    sql,
    close: async () => {
      await sql.end();
      await app.close();
      await emulator.close();
      await database.drop();
    },
  };
}

/** The twelve CRM events of the default BITRIX24_OFFLINE_EVENTS. */
export const DEFAULT_OFFLINE_EVENTS = [
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

export interface BindingView {
  event: string;
  offline: boolean;
  handler: string;
  connectorId: string;
  minTimeout?: number;
}

/** What the emulator holds for the portal, in a stable order. */
export async function emulatorBindings(h: Harness, memberId: string): Promise<BindingView[]> {
  const stats = await h.emulator.control.stats(memberId);
  return stats.bindings
    .map((binding) => ({
      event: binding.event,
      offline: binding.offline,
      handler: binding.handler,
      connectorId: binding.connectorId,
      ...(binding.options.minTimeout !== undefined
        ? { minTimeout: binding.options.minTimeout }
        : {}),
    }))
    .sort((a, b) => a.event.localeCompare(b.event));
}

/** The bindings an installation must leave, with the default configuration. */
export function expectedBindings(h: Harness): BindingView[] {
  const handler = h.app.config.eventHandlerUrl;
  return [
    { event: 'ONOFFLINEEVENT', offline: false, handler, connectorId: '', minTimeout: 1 },
    { event: 'ONAPPUNINSTALL', offline: false, handler, connectorId: '' },
    { event: 'ONAPPUPDATE', offline: false, handler, connectorId: '' },
    { event: 'ONAPPPAYMENT', offline: false, handler, connectorId: '' },
    ...DEFAULT_OFFLINE_EVENTS.map((event) => ({
      event,
      offline: true,
      handler: '',
      connectorId: '',
    })),
  ].sort((a, b) => a.event.localeCompare(b.event));
}

export function formBody(fields: Record<string, unknown>): string {
  return qs.stringify(fields, { format: 'RFC1738' });
}

export function postForm(url: string, body: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
}

export function postEvent(h: Harness, body: string): Promise<Response> {
  return postForm(`${h.app.url}/bitrix24/events`, body);
}

export function postJsonEvent(h: Harness, body: unknown): Promise<Response> {
  return fetch(`${h.app.url}/bitrix24/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** A portal on the emulator installed through ONAPPINSTALL (an app without UI). */
export async function installViaEvent(h: Harness): Promise<CreatedPortal> {
  const portal = await h.emulator.control.createPortal();
  const { delivered } = await h.emulator.control.install(portal.memberId, {
    mode: 'event',
    handlerUrl: h.app.config.eventHandlerUrl,
  });
  if (delivered.status !== 200) {
    throw new Error(`ONAPPINSTALL answered ${delivered.status}: ${delivered.body}`);
  }
  return portal;
}

/** A portal installed through the install page, with BX24.installFinish() done afterwards. */
export async function installViaUi(h: Harness): Promise<{ portal: CreatedPortal; html: string }> {
  const portal = await h.emulator.control.createPortal();
  const { form, query } = await h.emulator.control.install(portal.memberId, { mode: 'ui' });
  const response = await postForm(
    `${h.app.url}/bitrix24/install?${new URLSearchParams(query).toString()}`,
    formBody(form),
  );
  const html = await response.text();
  if (response.status !== 200) throw new Error(`install page answered ${response.status}: ${html}`);
  await h.emulator.control.finishInstall(portal.memberId);
  return { portal, html };
}

/**
 * A refresh token the OAuth server really issued for the portal (a new, independent chain): by
 * default the installing admin's; with `user`, the session of that user opening the app.
 */
export async function freshRefreshToken(
  h: Harness,
  memberId: string,
  user: { userId: number; admin: boolean } = { userId: 1, admin: true },
): Promise<string> {
  const { code } = await h.emulator.control.createAuthorizationCode(memberId, user);
  const response = await postForm(
    `${h.emulator.url}/oauth/token/`,
    formBody({
      grant_type: 'authorization_code',
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
      code,
    }),
  );
  const answer = (await response.json()) as { refresh_token?: string };
  if (!answer.refresh_token) throw new Error(`code exchange failed: ${JSON.stringify(answer)}`);
  return answer.refresh_token;
}

/** An event POST as Bitrix24 makes it, with the portal's genuine application token. */
export function genuineEventBody(
  portal: CreatedPortal,
  event: string,
  options: { data?: unknown; auth?: Record<string, unknown>; ts?: number } = {},
): string {
  return formBody({
    event,
    event_handler_id: '7',
    ...(options.data !== undefined ? { data: options.data } : {}),
    ts: String(options.ts ?? Math.floor(Date.now() / 1000)),
    auth: {
      domain: portal.domain,
      client_endpoint: portal.clientEndpoint,
      member_id: portal.memberId,
      application_token: portal.applicationToken,
      ...options.auth,
    },
  });
}

export interface PortalRow {
  member_id: string;
  domain: string;
  client_endpoint: string;
  status: string;
  status_reason: string | null;
  plan_status: string | null;
  delivery_mode: string;
  application_token_hash: Buffer | null;
  bound_events: { event: string; offline: boolean }[];
  bound_at: Date | null;
  installer_user_id: number | null;
  installed_at: Date | null;
  uninstalled_at: Date | null;
}

export async function portalRow(h: Harness, memberId: string): Promise<PortalRow | undefined> {
  const { rows } = await h.sql.query<PortalRow>('SELECT * FROM portals WHERE member_id = $1', [
    memberId,
  ]);
  return rows[0];
}

export interface TokenRow {
  access_token: string | null;
  refresh_token: string | null;
  generation: number;
}

export async function tokenRow(h: Harness, memberId: string): Promise<TokenRow | undefined> {
  const { rows } = await h.sql.query<TokenRow>(
    'SELECT access_token, refresh_token, generation FROM portal_tokens WHERE member_id = $1',
    [memberId],
  );
  return rows[0];
}

/** Row counts of every table a request could write to. */
export async function tableCounts(h: Harness): Promise<Record<string, number>> {
  const { rows } = await h.sql.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM portals) AS portals,
            (SELECT count(*) FROM portal_tokens) AS portal_tokens,
            (SELECT count(*) FROM portal_status_changes) AS portal_status_changes,
            (SELECT count(*) FROM stored_events) AS stored_events`,
  );
  return Object.fromEntries(
    Object.entries(rows[0]).map(([table, count]) => [table, Number(count)]),
  );
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export async function errorBody(response: Response): Promise<ErrorBody> {
  expect(response.headers.get('content-type')).toContain('application/json');
  const body = (await response.json()) as ErrorBody;
  expect(typeof body.error?.code).toBe('string');
  expect(typeof body.error?.message).toBe('string');
  return body;
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
