import qs from 'qs';

/**
 * Bitrix reads request parameters with PHP's loose conversions. These reproduce the ones the
 * emulated methods depend on, so odd inputs get the answers a real portal gives.
 */

/** PHP `intval`: leading digits of a string, 0 for anything unparsable. */
export function phpIntval(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : 0;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const parsed = Number.parseInt(value.trim(), 10);
    return Number.isNaN(parsed) ? 0 : parsed;
  }
  return 0;
}

/** PHP `(bool)`: '', '0', 0, null, false and empty arrays are false. */
export function phpTruthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return false;
  if (typeof value === 'string') return value !== '' && value !== '0';
  if (typeof value === 'number') return value !== 0;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

/**
 * The values of a PHP array, or undefined for a scalar. Form bodies give objects keyed '0', '1', …
 * for long lists, JSON gives arrays: PHP sees both as arrays.
 */
export function phpArrayValues(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value as unknown[];
  if (value !== null && typeof value === 'object') {
    return Object.values(value as Record<string, unknown>);
  }
  return undefined;
}

/** PHP `(string)` of a scalar parameter; arrays become ''. */
export function phpString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? '1' : '';
  return '';
}

/**
 * How PHP's `json_encode` shapes an array built key by key: keys 0..n-1 in order make a JSON list,
 * anything else an object, and an empty array is `[]`.
 */
export function phpArrayToJson(entries: ReadonlyMap<string, unknown>): unknown {
  if (entries.size === 0) return [];
  let expected = 0;
  for (const key of entries.keys()) {
    if (key !== String(expected)) return Object.fromEntries(entries);
    expected++;
  }
  return [...entries.values()];
}

/**
 * PHP's `parse_str` for query strings and form bodies: bracket keys nest (`filter[>ID]=5`,
 * `cmd[a]=…`), and long lists stay lists.
 */
export function parsePhpQuery(text: string): Record<string, unknown> {
  return qs.parse(text, { depth: 10, arrayLimit: 1000, parameterLimit: 100_000 });
}

/** `json_encode` of a PHP value: PHP has no empty object, so `{}` comes out as `[]`. */
export function stringifyAsPhpJson(value: unknown): string {
  return JSON.stringify(value, (_key, member: unknown) =>
    member !== null &&
    typeof member === 'object' &&
    !Array.isArray(member) &&
    Object.keys(member).length === 0
      ? []
      : member,
  );
}

/** PHP's `$_REQUEST`: query parameters, overlaid by those of a form or JSON object body. */
export function mergeRequestParams(query: unknown, body: unknown): Record<string, unknown> {
  const asParams = (value: unknown): Record<string, unknown> =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  return { ...asParams(query), ...asParams(body) };
}
