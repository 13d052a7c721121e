import { substituteReferences, type BatchResults } from './batch';

function results(): BatchResults {
  return {
    result: new Map<string, unknown>([
      ['deal', 42],
      ['page', { process_id: 'abc', events: [{ ID: '7' }] }],
    ]),
    next: new Map(),
    total: new Map([['page', 120]]),
    time: new Map(),
    error: new Map(),
  };
}

describe('batch references', () => {
  it('puts the referenced value in place of a parameter that is only a reference', () => {
    expect(substituteReferences({ process_id: '$result[page][process_id]' }, results())).toEqual({
      process_id: 'abc',
    });
    expect(substituteReferences({ events: '$result[page][events]' }, results())).toEqual({
      events: [{ ID: '7' }],
    });
  });

  it('replaces references inside text and nested parameters with scalars', () => {
    expect(
      substituteReferences(
        { fields: { TITLE: 'Deal $result[deal]', TOTAL: '$total[page]' } },
        results(),
      ),
    ).toEqual({ fields: { TITLE: 'Deal 42', TOTAL: 120 } });
  });

  it('stops where a path breaks, as Bitrix does', () => {
    expect(substituteReferences({ id: '$result[page][missing]' }, results())).toEqual({
      id: { process_id: 'abc', events: [{ ID: '7' }] },
    });
  });
});
