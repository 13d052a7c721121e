import { hash } from 'node:crypto';
import { EventNotVerifiedError, MalformedEventError } from './webhook.errors';

/** Events that carry no application_token at all (`on-app-payment.md`): nothing can vouch for them. */
const WITHOUT_APPLICATION_TOKEN: ReadonlySet<string> = new Set(['ONAPPPAYMENT']);

/**
 * Events EventWebhookService acts on itself and never stores as online events, so nothing reads
 * their delivery digest: not computing it spares a SHA-256 on every ONOFFLINEEVENT, the event
 * Bitrix24 sends most.
 */
const NEVER_STORED: ReadonlySet<string> = new Set([
  'ONAPPINSTALL',
  'ONAPPUNINSTALL',
  'ONAPPUPDATE',
  'ONAPPPAYMENT',
  'ONOFFLINEEVENT',
]);

/** One Bitrix24 event POST, reduced to what we act on. */
export interface EventNotification {
  /** Upper-cased, as Bitrix24 binds and sends it. */
  readonly event: string;
  readonly memberId: string;
  /** '' only for ONAPPPAYMENT, which carries none. */
  readonly applicationToken: string;
  /**
   * The event's own access token. Only ONAPPUPDATE's is used: the portal, asked at its stored
   * address, confirms it (the update's new application_token cannot vouch for itself).
   */
  readonly accessToken: string | undefined;
  /** ONAPPUPDATE's `auth[server_endpoint]`, kept once the update is confirmed (known hosts only). */
  readonly serverEndpoint: string | undefined;
  /**
   * SHA-256 of the event's own access token, never the token: Bitrix24 issues each event delivery
   * its own token, so two real changes with the same data in the same second differ here while a
   * resent POST does not. Null when the event carries no token (robots, agents), and for the
   * events that are never stored (lifecycle events, ONOFFLINEEVENT).
   */
  readonly deliveryDigest: string | null;
  /** Present on ONAPPINSTALL (and a few others); used only to confirm an installation at the OAuth server. */
  readonly refreshToken: string | undefined;
  /** `data` as Bitrix24 sent it; undefined when omitted (Bitrix24 drops empty data from form bodies). */
  readonly data: Record<string, unknown> | unknown[] | undefined;
  /** `ts`, the unix time Bitrix24 fired the event at. */
  readonly firedAt: Date | null;
}

const EVENT_NAME = /^[A-Za-z0-9_]{1,100}$/;
const MEMBER_ID = /^[A-Za-z0-9_.-]{1,64}$/;
/** Bitrix24 tokens are short printable ASCII; anything longer or stranger is not one. */
const TOKEN = /^[\x21-\x7e]{1,512}$/;
const UNIX_SECONDS = /^\d{1,12}$/;
/** Form bodies nest at most 8 levels (see bootstrap); JSON bodies get a similar bound here. */
const MAX_DATA_DEPTH = 32;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A NUL or a lone UTF-16 surrogate: Postgres jsonb refuses both, and only a hostile sender makes them. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

function assertStorableData(data: unknown): void {
  const pending: Array<{ value: unknown; depth: number }> = [{ value: data, depth: 1 }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const { value, depth } = item;
    if (typeof value === 'string') {
      if (!isStorableText(value)) {
        throw new MalformedEventError('data contains a NUL character or broken Unicode');
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_DATA_DEPTH) {
      throw new MalformedEventError(`data is nested deeper than ${MAX_DATA_DEPTH} levels`);
    }
    for (const [key, child] of Object.entries(value)) {
      if (!isStorableText(key)) {
        throw new MalformedEventError('data contains a NUL character or broken Unicode');
      }
      pending.push({ value: child, depth: depth + 1 });
    }
  }
}

/** A credential field: absent means "not authenticated", present but not a token means malformed. */
function credential(auth: Record<string, unknown>, key: string): string {
  const value = auth[key];
  if (value === undefined || value === '') throw new EventNotVerifiedError();
  if (typeof value !== 'string') throw new MalformedEventError(`auth[${key}] must be a string`);
  if (!TOKEN.test(value)) throw new MalformedEventError(`auth[${key}] is not a valid token`);
  return value;
}

function parseData(value: unknown): EventNotification['data'] {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'object') throw new MalformedEventError('data must be an object');
  assertStorableData(value);
  return value as EventNotification['data'];
}

function parseFiredAt(value: unknown): Date | null {
  if (value === undefined || value === '') return null;
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !UNIX_SECONDS.test(text)) {
    throw new MalformedEventError('ts must be a unix time in seconds');
  }
  return new Date(Number(text) * 1000);
}

/**
 * Validates a parsed form or JSON body as a Bitrix24 event. Structural problems are 400s;
 * a missing `auth` block or credential is a 401, the same answer a wrong token gets.
 */
export function parseEventNotification(body: unknown): EventNotification {
  if (!isPlainObject(body)) throw new MalformedEventError('The body must be a form or JSON object');

  const event = body.event;
  if (event === undefined || event === '') throw new MalformedEventError('event is required');
  if (typeof event !== 'string') throw new MalformedEventError('event must be a string');
  if (!EVENT_NAME.test(event)) throw new MalformedEventError('event is not a valid event name');
  const eventName = event.toUpperCase();

  const auth = body.auth;
  if (auth === undefined || auth === '') throw new EventNotVerifiedError();
  if (!isPlainObject(auth)) throw new MalformedEventError('auth must be an object');

  const memberId = auth.member_id;
  if (memberId === undefined || memberId === '') throw new EventNotVerifiedError();
  if (typeof memberId !== 'string')
    throw new MalformedEventError('auth[member_id] must be a string');
  if (!MEMBER_ID.test(memberId))
    throw new MalformedEventError('auth[member_id] is not a member id');

  const tokenless =
    WITHOUT_APPLICATION_TOKEN.has(eventName) &&
    (auth.application_token === undefined || auth.application_token === '');
  const applicationToken = tokenless ? '' : credential(auth, 'application_token');
  const presentedAccessToken =
    auth.access_token === undefined || auth.access_token === ''
      ? undefined
      : credential(auth, 'access_token');
  // Every other event's access token is dropped here: it is never used, so it is never kept.
  const accessToken = eventName === 'ONAPPUPDATE' ? presentedAccessToken : undefined;
  const serverEndpoint =
    eventName === 'ONAPPUPDATE' &&
    typeof auth.server_endpoint === 'string' &&
    auth.server_endpoint.length <= 512
      ? auth.server_endpoint
      : undefined;
  const deliveryDigest =
    presentedAccessToken === undefined || NEVER_STORED.has(eventName)
      ? null
      : hash('sha256', presentedAccessToken, 'hex');
  const refreshToken =
    auth.refresh_token === undefined ? undefined : credential(auth, 'refresh_token');

  const handlerId = body.event_handler_id;
  if (
    handlerId !== undefined &&
    !(typeof handlerId === 'string' && /^\d{1,18}$/.test(handlerId)) &&
    !(typeof handlerId === 'number' && Number.isSafeInteger(handlerId))
  ) {
    throw new MalformedEventError('event_handler_id must be a number');
  }

  return {
    event: eventName,
    memberId,
    applicationToken,
    accessToken,
    serverEndpoint,
    deliveryDigest,
    refreshToken,
    data: parseData(body.data),
    firedAt: parseFiredAt(body.ts),
  };
}

/** ONAPPUNINSTALL's `data[CLEAN]`: 1 when the portal asked to delete the app's data too. */
export function uninstallAsksForCleanup(notification: EventNotification): boolean {
  const data = notification.data;
  if (!isPlainObject(data)) return false;
  return String(data.CLEAN) === '1';
}

/** ONAPPUPDATE's `data[VERSION]`, the version just installed; undefined when absent or odd. */
export function updatedVersion(notification: EventNotification): string | undefined {
  const data = notification.data;
  if (!isPlainObject(data)) return undefined;
  const version = data.VERSION;
  if (typeof version === 'number' && Number.isSafeInteger(version)) return String(version);
  if (typeof version === 'string' && /^[0-9A-Za-z._-]{1,32}$/.test(version)) return version;
  return undefined;
}
