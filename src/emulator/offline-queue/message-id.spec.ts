import { createHash } from 'node:crypto';
import { defaultMessageId, encodeAsBitrixJson } from './message-id';

describe('encodeAsBitrixJson', () => {
  it('writes what PHP json_encode writes with the JSON_HEX_* flags', () => {
    expect(encodeAsBitrixJson({ A: 'a/b <i>&"\'', B: 'é', C: [1, true, null] })).toBe(
      '{"A":"a\\/b \\u003Ci\\u003E\\u0026\\u0022\\u0027","B":"\\u00e9","C":[1,true,null]}',
    );
  });

  it('encodes an empty object as PHP does an empty array', () => {
    expect(encodeAsBitrixJson({})).toBe('[]');
  });
});

describe('defaultMessageId', () => {
  it('is md5 of the event name and the encoded data', () => {
    const expected = createHash('md5')
      .update('ONCRMDEALUPDATE|{"FIELDS":{"ID":"7"}}')
      .digest('hex');
    expect(defaultMessageId('ONCRMDEALUPDATE', { FIELDS: { ID: '7' } })).toBe(expected);
  });

  it('uses the PHP encoding whenever it differs from JSON.stringify', () => {
    const data = { FIELDS: { TITLE: 'Café <b>', EXTRA: {} } };
    const expected = createHash('md5')
      .update(`ONCRMDEALADD|${encodeAsBitrixJson(data)}`)
      .digest('hex');
    expect(defaultMessageId('ONCRMDEALADD', data)).toBe(expected);
  });
});
