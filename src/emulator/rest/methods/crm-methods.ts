import type { CrmEntityType, CrmFields } from '../../crm/crm-records';
import { formatPortalDateTime } from '../../portals/portal-time';
import type { MethodParams } from '../method-params';
import { restErrors } from '../rest-error';
import type { MethodCall, MethodOutcome, RestMethod } from '../rest-method';

/**
 * A few CRM writes that make the portal raise the events apps subscribe to. The event data is
 * `{FIELDS: {ID}}`, so repeated updates of one object merge into one offline row.
 */
export const crmMethods: Readonly<Record<string, RestMethod>> = {
  ...entityMethods('deal', 'ONCRMDEAL'),
  ...entityMethods('contact', 'ONCRMCONTACT'),
};

function entityMethods(type: CrmEntityType, eventPrefix: string): Record<string, RestMethod> {
  const raise = (call: MethodCall, action: string, id: number): void => {
    call.emulator.events.raise(call.hit, `${eventPrefix}${action}`, { FIELDS: { ID: String(id) } });
  };
  return {
    [`crm.${type}.add`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const now = formatPortalDateTime(call.emulator.clock.now());
        const id = call.portal.crm.add(type, {
          ...defaultCrmFields(type, now),
          ...readFields(call.params),
        });
        raise(call, 'ADD', id);
        return { result: id };
      },
    },
    [`crm.${type}.update`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const id = readId(call.params);
        const now = formatPortalDateTime(call.emulator.clock.now());
        const fields = { ...readFields(call.params), DATE_MODIFY: now };
        if (!call.portal.crm.update(type, id, fields)) throw restErrors.notFound();
        raise(call, 'UPDATE', id);
        return { result: true };
      },
    },
    [`crm.${type}.delete`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const id = readId(call.params);
        if (!call.portal.crm.delete(type, id)) throw restErrors.notFound();
        raise(call, 'DELETE', id);
        return { result: true };
      },
    },
    [`crm.${type}.get`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const record = call.portal.crm.get(type, readId(call.params));
        if (record === undefined) throw restErrors.notFound();
        return { result: record };
      },
    },
    [`crm.${type}.list`]: {
      scope: 'crm',
      run: (call): MethodOutcome => listRecords(call.portal.crm.all(type), call.params),
    },
  };
}

/** Bitrix24's list methods answer pages of this many rows. */
export const CRM_LIST_PAGE_SIZE = 50;

/** Fields Bitrix24 fills in itself when a record is created. */
export function defaultCrmFields(type: CrmEntityType, now: string): CrmFields {
  const common = { ASSIGNED_BY_ID: '1', CREATED_BY_ID: '1', DATE_CREATE: now, DATE_MODIFY: now };
  return type === 'deal'
    ? {
        TITLE: '',
        TYPE_ID: 'SALE',
        CATEGORY_ID: '0',
        STAGE_ID: 'NEW',
        CURRENCY_ID: 'USD',
        OPPORTUNITY: '0.00',
        CLOSED: 'N',
        CONTACT_ID: null,
        COMPANY_ID: null,
        ...common,
      }
    : { NAME: '', LAST_NAME: '', TYPE_ID: 'CLIENT', ...common };
}

/** `>=ID`, `!STAGE_ID`, `TITLE`: an operator prefix and a field name. */
const FILTER_KEY = /^(>=|<=|!=|!@|>|<|=|!|%|@)?(.+)$/;

/** A field value as PHP would compare it as a string. */
function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

function compare(left: unknown, right: unknown): number {
  const a = Number(left);
  const b = Number(right);
  if (left !== null && right !== null && !Number.isNaN(a) && !Number.isNaN(b)) return a - b;
  return text(left).localeCompare(text(right));
}

function matches(record: CrmFields, key: string, expected: unknown): boolean {
  const [, operator = '=', field] = FILTER_KEY.exec(key) ?? [];
  const actual = record[field.toUpperCase()];
  const values = Array.isArray(expected) ? expected : [expected];
  switch (operator) {
    case '>':
      return compare(actual, expected) > 0;
    case '>=':
      return compare(actual, expected) >= 0;
    case '<':
      return compare(actual, expected) < 0;
    case '<=':
      return compare(actual, expected) <= 0;
    case '@':
      return values.some((value) => compare(actual, value) === 0);
    case '!@':
    case '!':
    case '!=':
      return values.every((value) => compare(actual, value) !== 0);
    case '%':
      return text(actual).toLowerCase().includes(text(expected).toLowerCase());
    default:
      return values.some((value) => compare(actual, value) === 0);
  }
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/**
 * `crm.*.list`: filter, order, select, and pages of 50 from `start`. `start=-1` skips the count:
 * no `next`, `total` 0 (settings/performance/huge-data.md).
 */
function listRecords(records: CrmFields[], params: MethodParams): MethodOutcome {
  const filter = asRecord(params.get('FILTER'));
  const order = Object.entries(asRecord(params.get('ORDER')));
  const select = params.get('SELECT');
  const selected =
    Array.isArray(select) && select.length > 0 && !select.includes('*')
      ? new Set(['ID', ...select.map((field) => String(field).toUpperCase())])
      : null;
  const rows = records.filter((record) =>
    Object.entries(filter).every(([key, value]) => matches(record, key, value)),
  );
  if (order.length > 0) {
    rows.sort((a, b) => {
      for (const [field, direction] of order) {
        const sign = String(direction).toUpperCase() === 'DESC' ? -1 : 1;
        const difference = compare(a[field.toUpperCase()], b[field.toUpperCase()]);
        if (difference !== 0) return sign * difference;
      }
      return 0;
    });
  }
  const start = params.has('START') ? params.int('START') : 0;
  const offset = Math.max(0, start);
  const page = rows
    .slice(offset, offset + CRM_LIST_PAGE_SIZE)
    .map((record) =>
      selected === null
        ? record
        : Object.fromEntries(Object.entries(record).filter(([field]) => selected.has(field))),
    );
  if (start < 0) return { result: page, total: 0 };
  const next = offset + CRM_LIST_PAGE_SIZE < rows.length ? offset + CRM_LIST_PAGE_SIZE : undefined;
  return { result: page, total: rows.length, ...(next === undefined ? {} : { next }) };
}

function readId(params: MethodParams): number {
  const id = params.int('ID');
  if (id <= 0) throw restErrors.argument('ID is not defined or invalid.', 'ID');
  return id;
}

function readFields(params: MethodParams): CrmFields {
  const fields = params.get('FIELDS');
  return fields !== null && typeof fields === 'object' && !Array.isArray(fields)
    ? (fields as CrmFields)
    : {};
}
