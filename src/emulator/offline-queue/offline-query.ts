import { restErrors } from '../rest/rest-error';
import { phpIntval, phpString } from '../rest/php-values';
import type { OfflineRow } from './offline-row';

/** Columns of `b_rest_event_offline` that `filter` and `order` may name. */
export type OfflineField =
  'ID' | 'TIMESTAMP_X' | 'EVENT_NAME' | 'MESSAGE_ID' | 'PROCESS_ID' | 'ERROR';

/** `event.offline.get` filters and orders on these (contract §1)… */
export const GET_FIELDS: readonly OfflineField[] = [
  'ID',
  'TIMESTAMP_X',
  'EVENT_NAME',
  'MESSAGE_ID',
];
/** …and `event.offline.list` on these as well (contract §2). */
export const LIST_FIELDS: readonly OfflineField[] = [...GET_FIELDS, 'PROCESS_ID', 'ERROR'];

/** IRestService::sanitizeFilter's operations; `@` is IN and `%` is LIKE '%value%'. */
type FilterOperator = '=' | '>' | '<' | '>=' | '<=' | '@' | '%';
const OPERATORS: ReadonlyMap<string, FilterOperator> = new Map([
  ['', '='],
  ['=', '='],
  ['>', '>'],
  ['<', '<'],
  ['>=', '>='],
  ['<=', '<='],
  ['@', '@'],
  ['%', '%'],
]);

type Comparable = number | string;

export interface FilterCondition {
  readonly field: OfflineField;
  readonly operator: FilterOperator;
  /** One value, or several for `@`; numbers for ID/ERROR/TIMESTAMP_X (ms), lower-cased strings otherwise. */
  readonly values: readonly Comparable[];
}

export interface OrderTerm {
  readonly field: OfflineField;
  readonly descending: boolean;
}

export const OLDEST_FIRST: readonly OrderTerm[] = [{ field: 'TIMESTAMP_X', descending: false }];
export const LOWEST_ID_FIRST: readonly OrderTerm[] = [{ field: 'ID', descending: false }];

/**
 * Parses a `filter` the way Bitrix does: keys are `<operator><FIELD>`, upper-cased; unknown operators
 * (`!` included) and fields are refused. `event.offline.get` refuses array values altogether, because
 * its marking query takes scalars only.
 */
export function parseFilter(
  raw: unknown,
  fields: readonly OfflineField[],
  options: { arraysAllowed: boolean },
): FilterCondition[] {
  if (raw === undefined) return [];
  if (raw === null || typeof raw !== 'object') {
    throw restErrors.argument('The filter is not an array.');
  }
  const conditions: FilterCondition[] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const [, operatorText, fieldText] = /^([^a-zA-Z]*)(.*)$/s.exec(key.toUpperCase()) ?? [];
    const operator = OPERATORS.get(operatorText ?? '');
    if (operator === undefined) {
      throw restErrors.argument(`Filter operation not allowed: ${operatorText}`);
    }
    const field = fields.find((candidate) => candidate === fieldText);
    if (field === undefined) throw restErrors.argument(`Filter field not allowed: ${fieldText}`);
    const isList = value !== null && typeof value === 'object';
    if (isList && !(options.arraysAllowed && operator === '@')) {
      throw restErrors.argument(`The value of an argument '${key}' has an invalid type`, key);
    }
    const rawValues = isList ? Object.values(value as Record<string, unknown>) : [value];
    conditions.push({
      field,
      operator,
      values: rawValues.map((item) => toComparable(field, item)),
    });
  }
  return conditions;
}

/** Parses `order` (`{FIELD: ASC|DESC}`), falling back to the method's default when absent. */
export function parseOrder(
  raw: unknown,
  fields: readonly OfflineField[],
  fallback: readonly OrderTerm[],
): readonly OrderTerm[] {
  if (raw === undefined) return fallback;
  if (raw === null || typeof raw !== 'object') {
    throw restErrors.argument('The order is not an array.');
  }
  const terms: OrderTerm[] = [];
  for (const [key, direction] of Object.entries(raw as Record<string, unknown>)) {
    const field = fields.find((candidate) => candidate === key.toUpperCase());
    if (field === undefined) throw restErrors.argument(`Order field not allowed: ${key}`);
    const normalized = typeof direction === 'string' ? direction.toUpperCase() : '';
    if (normalized !== 'ASC' && normalized !== 'DESC') {
      throw restErrors.argument('Order direction should be one of {ASC|DESC}');
    }
    terms.push({ field, descending: normalized === 'DESC' });
  }
  return terms.length > 0 ? terms : fallback;
}

/** `{TIMESTAMP_X: ASC}`, optionally with `ID: ASC` after it: the queue's own order. */
export function isOldestFirst(order: readonly OrderTerm[]): boolean {
  if (order.length === 0 || order[0].field !== 'TIMESTAMP_X' || order[0].descending) return false;
  return (
    order.length === 1 || (order.length === 2 && order[1].field === 'ID' && !order[1].descending)
  );
}

/**
 * How rows equal in every ordered field come back. MySQL leaves it undefined; `id` (lowest first)
 * is the emulator's default, `id-desc` plays a server that returns them the other way round.
 */
export type TieBreak = 'id' | 'id-desc';

export function isLowestIdFirst(order: readonly OrderTerm[]): boolean {
  return order.length === 1 && order[0].field === 'ID' && !order[0].descending;
}

export function matchesFilter(row: OfflineRow, conditions: readonly FilterCondition[]): boolean {
  return conditions.every((condition) =>
    matchesCondition(fieldValue(row, condition.field), condition),
  );
}

/** Sorts by the requested terms; ties are broken by ID so results are deterministic. */
export function compareByOrder(
  order: readonly OrderTerm[],
  tieBreak: TieBreak = 'id',
): (a: OfflineRow, b: OfflineRow) => number {
  return (a, b) => {
    for (const term of order) {
      const difference = compare(fieldValue(a, term.field), fieldValue(b, term.field));
      if (difference !== 0) return term.descending ? -difference : difference;
    }
    return tieBreak === 'id' ? a.id - b.id : b.id - a.id;
  };
}

/** The PROCESS_ID a filter pins down exactly, if any: lets `list` look at one batch only. */
export function exactProcessId(conditions: readonly FilterCondition[]): string | undefined {
  const pinned = conditions.find(
    (condition) => condition.field === 'PROCESS_ID' && condition.operator === '=',
  );
  return pinned === undefined ? undefined : String(pinned.values[0]);
}

/** True when the filter keeps reserved rows only (`>PROCESS_ID: ''`, how recovery finds batches). */
export function onlyReservedRows(conditions: readonly FilterCondition[]): boolean {
  return conditions.some(
    (condition) =>
      condition.field === 'PROCESS_ID' && condition.operator === '>' && condition.values[0] === '',
  );
}

function toComparable(field: OfflineField, value: unknown): Comparable {
  switch (field) {
    case 'ID':
    case 'ERROR':
      return phpIntval(value);
    case 'TIMESTAMP_X': {
      const milliseconds = Date.parse(String(value));
      if (Number.isNaN(milliseconds)) {
        throw restErrors.argument(`Invalid TIMESTAMP_X value: ${String(value)}`, 'TIMESTAMP_X');
      }
      return milliseconds;
    }
    default:
      // The real table's collation is case-insensitive.
      return phpString(value).toLowerCase();
  }
}

function fieldValue(row: OfflineRow, field: OfflineField): Comparable {
  switch (field) {
    case 'ID':
      return row.id;
    case 'TIMESTAMP_X':
      return row.timestampMs;
    case 'EVENT_NAME':
      return row.eventName.toLowerCase();
    case 'MESSAGE_ID':
      return row.messageId.toLowerCase();
    case 'PROCESS_ID':
      return row.processId.toLowerCase();
    case 'ERROR':
      return row.error;
  }
}

function matchesCondition(actual: Comparable, condition: FilterCondition): boolean {
  const [expected] = condition.values;
  switch (condition.operator) {
    case '=':
      return compare(actual, expected) === 0;
    case '>':
      return compare(actual, expected) > 0;
    case '<':
      return compare(actual, expected) < 0;
    case '>=':
      return compare(actual, expected) >= 0;
    case '<=':
      return compare(actual, expected) <= 0;
    case '@':
      return condition.values.some((value) => compare(actual, value) === 0);
    case '%':
      return String(actual).includes(String(expected));
  }
}

function compare(a: Comparable, b: Comparable): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const left = String(a);
  const right = String(b);
  return left < right ? -1 : left > right ? 1 : 0;
}
