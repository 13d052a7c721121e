import { createHash } from 'node:crypto';

/** What JSON.stringify writes differently from PHP: escaped characters and empty objects. */
const NEEDS_PHP_ENCODING = /[^\x20-\x7e]|[/<>&']|\\"|\{\}/;

/** `MESSAGE_ID = md5(EVENT_NAME|Json::encode(EVENT_DATA))` when the producer supplies none (contract §1). */
export function defaultMessageId(eventName: string, eventData: unknown): string {
  const json = JSON.stringify(eventData ?? null);
  // Plain-ASCII data without `{}` encodes the same in both languages: skip the slow encoder.
  const encoded = NEEDS_PHP_ENCODING.test(json) ? encodeAsBitrixJson(eventData) : json;
  return createHash('md5').update(`${eventName}|${encoded}`).digest('hex');
}

/**
 * Bitrix's `Json::encode`: PHP `json_encode` with JSON_HEX_TAG|AMP|APOS|QUOT, so the same data gives
 * the same MESSAGE_ID as on a real portal. PHP has no empty object: `{}` encodes as `[]`.
 */
export function encodeAsBitrixJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return encodeString(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '0';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(encodeAsBitrixJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return '[]';
    const members = entries.map(
      ([key, member]) => `${encodeString(key)}:${encodeAsBitrixJson(member)}`,
    );
    return `{${members.join(',')}}`;
  }
  return 'null';
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '/': '\\/',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** Characters PHP writes as `\u00XX` under the JSON_HEX_* flags. */
const HEX_ESCAPED = new Set(['"', '<', '>', '&', "'"]);

function encodeString(text: string): string {
  let encoded = '"';
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    const code = text.charCodeAt(index);
    const short = SHORT_ESCAPES[char];
    if (short !== undefined) {
      encoded += short;
    } else if (code < 0x20 || code > 0x7f || HEX_ESCAPED.has(char)) {
      const hex = code.toString(16).padStart(4, '0');
      encoded += `\\u${HEX_ESCAPED.has(char) ? hex.toUpperCase() : hex}`;
    } else {
      encoded += char;
    }
  }
  return `${encoded}"`;
}
