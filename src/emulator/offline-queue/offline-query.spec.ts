import { RestError } from '../rest/rest-error';
import { GET_FIELDS, LIST_FIELDS, parseFilter, parseOrder, OLDEST_FIRST } from './offline-query';

function refusal(action: () => unknown): RestError {
  try {
    action();
  } catch (error) {
    if (error instanceof RestError) return error;
  }
  throw new Error('expected a RestError');
}

describe('offline filter and order parsing', () => {
  it('reads operator prefixes on upper-cased field names', () => {
    expect(
      parseFilter({ '>=id': '5', event_name: 'X' }, GET_FIELDS, { arraysAllowed: false }),
    ).toEqual([
      { field: 'ID', operator: '>=', values: [5] },
      { field: 'EVENT_NAME', operator: '=', values: ['x'] },
    ]);
  });

  it('refuses negation, unknown fields, array values in get, and non-object filters', () => {
    expect(
      refusal(() => parseFilter({ '!ID': 1 }, GET_FIELDS, { arraysAllowed: false })).description,
    ).toBe('Filter operation not allowed: !');
    expect(
      refusal(() => parseFilter({ PROCESS_ID: 'x' }, GET_FIELDS, { arraysAllowed: false })).code,
    ).toBe('ERROR_ARGUMENT');
    expect(
      refusal(() => parseFilter({ '@ID': [1, 2] }, GET_FIELDS, { arraysAllowed: false })).code,
    ).toBe('ERROR_ARGUMENT');
    expect(
      refusal(() => parseFilter('ID=1', GET_FIELDS, { arraysAllowed: false })).description,
    ).toBe('The filter is not an array.');
  });

  it('accepts IN lists in list filters', () => {
    expect(parseFilter({ '@ID': ['1', '2'] }, LIST_FIELDS, { arraysAllowed: true })).toEqual([
      { field: 'ID', operator: '@', values: [1, 2] },
    ]);
  });

  it('defaults the order and refuses unknown directions', () => {
    expect(parseOrder(undefined, GET_FIELDS, OLDEST_FIRST)).toBe(OLDEST_FIRST);
    expect(parseOrder({ id: 'desc' }, GET_FIELDS, OLDEST_FIRST)).toEqual([
      { field: 'ID', descending: true },
    ]);
    expect(refusal(() => parseOrder({ ID: 'UP' }, GET_FIELDS, OLDEST_FIRST)).code).toBe(
      'ERROR_ARGUMENT',
    );
  });
});
