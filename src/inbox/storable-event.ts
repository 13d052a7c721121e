import type { OfflineEvent } from '../bitrix24/bitrix24.types';
import { orderingKeyFor } from './ordering-key';

/** Column lengths of stored_events (StoredEventEntity). */
export const EVENT_NAME_MAX_LENGTH = 128;
export const MESSAGE_ID_MAX_LENGTH = 64;
/** What stands in for a character Postgres cannot store. */
const REPLACEMENT = '\uFFFD';
/** A UTF-16 surrogate that is not half of a pair: UTF-8, hence Postgres, has no encoding for it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Postgres timestamptz runs from 4713 BC to 294276 AD; JavaScript dates reach a little further. */
const EARLIEST_YEAR = -4712;
const LATEST_YEAR = 294275;

/** One offline queue row in the shape stored_events takes it. */
export interface StorableOfflineRow {
  readonly queueId: string;
  readonly messageId: string | null;
  readonly eventName: string;
  readonly orderingKey: string | null;
  /** EVENT_DATA and EVENT_ADDITIONAL as JSON text. */
  readonly data: string;
  readonly additional: string;
  readonly bitrixTimestamp: Date | null;
  /** Why no handler can take the row as it is: it is stored `dead`, with this as last_error. */
  readonly unfit: string | null;
  /** Characters Postgres cannot store (NUL, lone surrogates), replaced by U+FFFD. */
  readonly replacedCharacters: number;
}

interface Cleaned<T> {
  value: T;
  replaced: number;
}

function cleanString(value: string): Cleaned<string> {
  let replaced = 0;
  let result = value;
  if (result.includes('\u0000')) {
    result = result.replaceAll('\u0000', () => {
      replaced += 1;
      return REPLACEMENT;
    });
  }
  // isWellFormed() would be the cheap test here, but it is ES2024 and the build targets ES2023.
  result = result.replace(LONE_SURROGATE, () => {
    replaced += 1;
    return REPLACEMENT;
  });
  return { value: result, replaced };
}

/** Strings and keys at every depth of a parsed JSON value, cleaned; everything else untouched. */
function cleanJson(value: unknown): Cleaned<unknown> {
  if (typeof value === 'string') return cleanString(value);
  if (Array.isArray(value)) {
    let replaced = 0;
    const items = value.map((item) => {
      const cleaned = cleanJson(item);
      replaced += cleaned.replaced;
      return cleaned.value;
    });
    return { value: replaced === 0 ? value : items, replaced };
  }
  if (typeof value === 'object' && value !== null) {
    let replaced = 0;
    const entries = Object.entries(value).map(([key, item]) => {
      const cleanedKey = cleanString(key);
      const cleaned = cleanJson(item);
      replaced += cleanedKey.replaced + cleaned.replaced;
      return [cleanedKey.value, cleaned.value] as const;
    });
    return { value: replaced === 0 ? value : Object.fromEntries(entries), replaced };
  }
  return { value, replaced: 0 };
}

/**
 * A parsed JSON value Postgres can store (jsonb refuses \u0000 and lone surrogates), and its JSON
 * text.
 */
export function storableJson(value: unknown): {
  value: unknown;
  json: string;
  replacedCharacters: number;
} {
  const cleaned = cleanJson(value ?? null);
  return {
    value: cleaned.value,
    json: JSON.stringify(cleaned.value),
    replacedCharacters: cleaned.replaced,
  };
}

/** The first `length` characters, never ending in half a surrogate pair. */
function truncated(value: string, length: number): string {
  return cleanString(value.slice(0, length)).value;
}

function toTimestamp(value: unknown): Date | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) return null;
  const year = parsed.getUTCFullYear();
  return year < EARLIEST_YEAR || year > LATEST_YEAR ? null : parsed;
}

/**
 * Makes a queue row storable whatever Bitrix24 put in it, so one odd row never blocks a portal's
 * drain: characters Postgres refuses (NUL, lone surrogates) are replaced in names, strings and
 * object keys; a name or MESSAGE_ID too long for its column is cut to fit and the row is marked
 * unfit (stored dead, the full value in its last_error), since its handlers would see a name or id
 * that is not Bitrix24's. The row's ID must already be checked to be a number.
 */
export function storableOfflineRow(event: OfflineEvent): StorableOfflineRow {
  const problems: string[] = [];
  let replaced = 0;

  const rawName = (event as { EVENT_NAME?: unknown }).EVENT_NAME;
  if (typeof rawName !== 'string' || rawName === '') {
    problems.push(`EVENT_NAME is missing or not a string (${JSON.stringify(rawName ?? null)})`);
  }
  const name = cleanString(typeof rawName === 'string' ? rawName.toUpperCase() : '');
  replaced += name.replaced;
  let eventName = name.value;
  if (eventName.length > EVENT_NAME_MAX_LENGTH) {
    problems.push(
      `EVENT_NAME is ${eventName.length} characters long, more than the ${EVENT_NAME_MAX_LENGTH} stored: ${eventName}`,
    );
    eventName = truncated(eventName, EVENT_NAME_MAX_LENGTH);
  }

  const rawMessageId = (event as { MESSAGE_ID?: unknown }).MESSAGE_ID;
  let messageId: string | null = null;
  if (rawMessageId !== undefined && rawMessageId !== null) {
    const cleaned = cleanString(
      typeof rawMessageId === 'string' ? rawMessageId : JSON.stringify(rawMessageId),
    );
    replaced += cleaned.replaced;
    messageId = cleaned.value;
    if (messageId.length > MESSAGE_ID_MAX_LENGTH) {
      problems.push(
        `MESSAGE_ID is ${messageId.length} characters long, more than the ${MESSAGE_ID_MAX_LENGTH} stored: ${messageId}`,
      );
      messageId = truncated(messageId, MESSAGE_ID_MAX_LENGTH);
    }
  }

  const data = cleanJson(event.EVENT_DATA ?? null);
  const additional = cleanJson(event.EVENT_ADDITIONAL ?? null);
  replaced += data.replaced + additional.replaced;

  return {
    queueId: String(event.ID),
    messageId,
    eventName,
    orderingKey: problems.length > 0 ? null : orderingKeyFor(eventName, data.value),
    data: JSON.stringify(data.value),
    additional: JSON.stringify(additional.value),
    bitrixTimestamp: toTimestamp(event.TIMESTAMP_X),
    unfit: problems.length > 0 ? problems.join('; ') : null,
    replacedCharacters: replaced,
  };
}

/**
 * The last resort for a row the database still refused: its payload kept as one JSON string (the
 * JSON text of what it held), no ordering key, stored dead with the database's reason.
 */
export function quarantinedOfflineRow(
  row: StorableOfflineRow,
  databaseError: string,
): StorableOfflineRow {
  return {
    ...row,
    orderingKey: null,
    data: JSON.stringify(row.data),
    additional: JSON.stringify(row.additional),
    unfit: cleanString(
      [
        `the database refused the row (${databaseError}); its EVENT_DATA and EVENT_ADDITIONAL are kept as JSON text`,
        ...(row.unfit !== null ? [row.unfit] : []),
      ].join('; '),
    ).value,
  };
}
