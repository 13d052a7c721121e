import { InvalidCursorError } from '../admin.errors';
import { KeysetCursor } from './keyset-cursor';
import { toPage } from './page-query.dto';

const DIGITS = /^[1-9][0-9]{0,18}$/;

describe('KeysetCursor', () => {
  const cursor = new KeysetCursor('events|member=a|desc', DIGITS);

  it('round-trips a key as an opaque base64url string', () => {
    const encoded = cursor.encode('12345');
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(encoded).not.toContain('12345');
    expect(cursor.decode(encoded)).toBe('12345');
  });

  it('refuses a cursor issued for another query', () => {
    const other = new KeysetCursor('events|member=b|desc', DIGITS);
    expect(() => cursor.decode(other.encode('12345'))).toThrow(/other filters or order/);
  });

  const forge = (payload: unknown): string =>
    Buffer.from(JSON.stringify(payload)).toString('base64url');

  it.each([
    ['empty', ''],
    ['not base64url', 'a+b/c='],
    ['oversized', 'A'.repeat(513)],
    ['not JSON', Buffer.from('not json').toString('base64url')],
    ['JSON null', forge(null)],
    ['a JSON string', forge('12345')],
    ['another version', forge({ v: 2, k: '1', q: 'x' })],
    ['a numeric key', forge({ v: 1, k: 1, q: 'x' })],
  ])('refuses %s input', (_label, input) => {
    expect(() => cursor.decode(input)).toThrow(InvalidCursorError);
  });

  it('refuses a key edited inside a genuine cursor', () => {
    const genuine = JSON.parse(Buffer.from(cursor.encode('7'), 'base64url').toString()) as object;
    expect(() => cursor.decode(forge({ ...genuine, k: '7 OR 1=1' }))).toThrow(InvalidCursorError);
    expect(cursor.decode(forge({ ...genuine, k: '8' }))).toBe('8');
  });
});

describe('toPage', () => {
  const encode = (key: string): string => `cursor:${key}`;

  it('uses the extra row only to know that more follow', () => {
    const page = toPage([1, 2, 3], 2, String, encode, (row) => row * 10);
    expect(page).toEqual({ items: [10, 20], nextCursor: 'cursor:2' });
  });

  it('has no cursor on the last page', () => {
    expect(toPage([1, 2], 2, String, encode, (row) => row)).toEqual({
      items: [1, 2],
      nextCursor: null,
    });
    expect(toPage<number, number>([], 2, String, encode, (row) => row)).toEqual({
      items: [],
      nextCursor: null,
    });
  });
});
