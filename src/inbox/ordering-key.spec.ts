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

  it('keeps robot runs out of every line, even one named like an object event or naming a deal', () => {
    const run = { document_id: ['crm', 'CCrmDocumentDeal', 'DEAL_12'], FIELDS: { ID: '12' } };
    expect(orderingKeyFor('ROBOT:SEND_INVOICE', run)).toBeNull();
    expect(orderingKeyFor('ROBOT:ONCRMDEALUPDATE', run)).toBeNull();
  });

  it('puts a deal moved to another funnel in the same line as its updates', () => {
    expect(
      orderingKeyFor('ONCRMDEALMOVETOCATEGORY', {
        FIELDS: { ID: '6675', CATEGORY_ID: '1', STAGE_ID: 'C1:NEW' },
      }),
    ).toBe('CRMDEAL:6675');
  });

  it('keys tasks by FIELDS_AFTER.ID, and a deleted task by FIELDS_BEFORE.ID', () => {
    expect(orderingKeyFor('ONTASKADD', { FIELDS_AFTER: { ID: '45' } })).toBe('TASK:45');
    expect(
      orderingKeyFor('ONTASKUPDATE', { FIELDS_BEFORE: { ID: '45' }, FIELDS_AFTER: { ID: '45' } }),
    ).toBe('TASK:45');
    expect(
      orderingKeyFor('ONTASKDELETE', {
        FIELDS_BEFORE: { ID: 45 },
        FIELDS_AFTER: 'undefined',
        IS_ACCESSIBLE_AFTER: 'N',
      }),
    ).toBe('TASK:45');
  });

  it('keys smart-process items by type and id, generic and per-type names alike', () => {
    expect(
      orderingKeyFor('ONCRMDYNAMICITEMUPDATE', { FIELDS: { ID: '7', ENTITY_TYPE_ID: '128' } }),
    ).toBe('CRMDYNAMICITEM_128:7');
    expect(orderingKeyFor('ONCRMDYNAMICITEMADD_128', { FIELDS: { ID: 7 } })).toBe(
      'CRMDYNAMICITEM_128:7',
    );
    expect(orderingKeyFor('onCrmDynamicItemDelete_129', { FIELDS: { ID: '7' } })).toBe(
      'CRMDYNAMICITEM_129:7',
    );
    // The same item id in another smart process is another object.
    expect(orderingKeyFor('ONCRMDYNAMICITEMUPDATE', { FIELDS: { ID: '7' } })).toBeNull();
  });

  it('gives events without any object id no key, so they run in any order', () => {
    expect(orderingKeyFor('ONTASKUPDATE', { FIELDS_AFTER: 'undefined' })).toBeNull();
    expect(orderingKeyFor('ONCRMDEALMOVETOCATEGORY', { FIELDS: {} })).toBeNull();
    expect(orderingKeyFor('ONUSERADD', [])).toBeNull();
  });
});
