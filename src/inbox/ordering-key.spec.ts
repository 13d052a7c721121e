import { orderingKeyFor } from './ordering-key';

describe('orderingKeyFor', () => {
  it('keys CRM object changes by entity and id, so ADD/UPDATE/DELETE of one deal share a key', () => {
    expect(orderingKeyFor('ONCRMDEALADD', { FIELDS: { ID: '123' } })).toBe('CRMDEAL:123');
    expect(orderingKeyFor('ONCRMDEALUPDATE', { FIELDS: { ID: '123' } })).toBe('CRMDEAL:123');
    expect(orderingKeyFor('oncrmdealdelete', { FIELDS: { ID: 123 } })).toBe('CRMDEAL:123');
  });

  it('keeps different entities apart', () => {
    expect(orderingKeyFor('ONCRMCONTACTUPDATE', { FIELDS: { ID: '123' } })).toBe('CRMCONTACT:123');
  });

  it('gives no key when the event names no object', () => {
    expect(orderingKeyFor('ONAPPINSTALL', { VERSION: '1' })).toBeNull();
    expect(orderingKeyFor('ONCRMDEALUPDATE', null)).toBeNull();
    expect(orderingKeyFor('ONCRMDEALUPDATE', false)).toBeNull();
    expect(orderingKeyFor('ONCRMDEALUPDATE', { FIELDS: {} })).toBeNull();
    expect(orderingKeyFor('ONCRMDEALUPDATE', { FIELDS: { ID: ' ' } })).toBeNull();
    expect(orderingKeyFor('ONCRMDEALUPDATE', { FIELDS: { ID: { nested: 1 } } })).toBeNull();
  });
});
