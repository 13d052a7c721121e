import { withParametersWritten } from './one-round-trip';

describe('parameters written into a statement', () => {
  it('writes each parameter as a quoted literal and NULL for null', () => {
    expect(
      withParametersWritten({
        sql: 'SELECT $1::int, $2::text, $10',
        params: [30, null, 3, 4, 5, 6, 7, 8, 9, 'ten'],
      }),
    ).toBe(`SELECT '30'::int, NULL::text, 'ten'`);
  });

  it('refuses binary values, which have no safe text form', () => {
    expect(() => withParametersWritten({ sql: 'SELECT $1', params: [Buffer.from('x')] })).toThrow(
      /\$1 is binary/,
    );
  });

  it('refuses a placeholder without its parameter', () => {
    expect(() => withParametersWritten({ sql: 'SELECT $1, $2', params: [1] })).toThrow(
      /refers to \$2 but has 1 parameters/,
    );
  });
});
