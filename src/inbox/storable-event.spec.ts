import type { OfflineEvent } from '../bitrix24/bitrix24.types';
import {
  EVENT_NAME_MAX_LENGTH,
  MESSAGE_ID_MAX_LENGTH,
  quarantinedOfflineRow,
  storableJson,
  storableOfflineRow,
} from './storable-event';

function row(overrides: Partial<Record<keyof OfflineEvent, unknown>> = {}): OfflineEvent {
  return {
    ID: '17',
    TIMESTAMP_X: '2024-07-18T12:32:31+02:00',
    EVENT_NAME: 'ONCRMDEALUPDATE',
    EVENT_DATA: { FIELDS: { ID: '5' } },
    EVENT_ADDITIONAL: { user_id: '1' },
    MESSAGE_ID: 'b0c7f7c2a3f1e4d5c6b7a8f9e0d1c2b3',
    ...overrides,
  } as OfflineEvent;
}

describe('storableOfflineRow', () => {
  it('leaves an ordinary row as Bitrix24 sent it', () => {
    expect(storableOfflineRow(row())).toEqual({
      queueId: '17',
      messageId: 'b0c7f7c2a3f1e4d5c6b7a8f9e0d1c2b3',
      eventName: 'ONCRMDEALUPDATE',
      orderingKey: 'CRMDEAL:5',
      data: '{"FIELDS":{"ID":"5"}}',
      additional: '{"user_id":"1"}',
      bitrixTimestamp: new Date('2024-07-18T10:32:31Z'),
      unfit: null,
      replacedCharacters: 0,
    });
  });

  it('replaces NUL and lone surrogates in strings and keys at any depth, and keeps pairs', () => {
    const stored = storableOfflineRow(
      row({
        EVENT_DATA: {
          FIELDS: { ID: '5', TITLE: 'a\u0000b', 'KEY\u0000': ['x\uD800', { '\uDC00y': 'ok' }] },
          EMOJI: '\uD83D\uDE00',
        },
        EVENT_ADDITIONAL: { note: '\u0000' },
      }),
    );
    expect(JSON.parse(stored.data)).toEqual({
      FIELDS: { ID: '5', TITLE: 'a\uFFFDb', 'KEY\uFFFD': ['x\uFFFD', { '\uFFFDy': 'ok' }] },
      EMOJI: '\uD83D\uDE00',
    });
    expect(JSON.parse(stored.additional)).toEqual({ note: '\uFFFD' });
    expect(stored.replacedCharacters).toBe(5);
    expect(stored.unfit).toBeNull();
    expect(stored.orderingKey).toBe('CRMDEAL:5');
    expect(stored.data).not.toContain('\\u0000');
    expect(stored.data).not.toMatch(/\\ud[89a-f]/i);
  });

  it('marks a row whose EVENT_NAME is too long unfit, cut to fit, the full name in the reason', () => {
    const longName = `ONCRM${'X'.repeat(200)}UPDATE`;
    const stored = storableOfflineRow(row({ EVENT_NAME: longName }));
    expect(stored.eventName).toHaveLength(EVENT_NAME_MAX_LENGTH);
    expect(stored.unfit).toContain(longName);
    expect(stored.orderingKey).toBeNull();
  });

  it('never cuts a name between the halves of a surrogate pair', () => {
    const name = `${'A'.repeat(EVENT_NAME_MAX_LENGTH - 1)}\uD83D\uDE00`;
    const stored = storableOfflineRow(row({ EVENT_NAME: name }));
    expect(stored.eventName).toBe(`${'A'.repeat(EVENT_NAME_MAX_LENGTH - 1)}\uFFFD`);
  });

  it('marks a row whose MESSAGE_ID is too long unfit, cut to fit, the full value in the reason', () => {
    const messageId = 'm'.repeat(100);
    const stored = storableOfflineRow(row({ MESSAGE_ID: messageId }));
    expect(stored.messageId).toHaveLength(MESSAGE_ID_MAX_LENGTH);
    expect(stored.unfit).toContain(messageId);
  });

  it('marks a row without an EVENT_NAME unfit instead of refusing it', () => {
    const stored = storableOfflineRow(row({ EVENT_NAME: null }));
    expect(stored.eventName).toBe('');
    expect(stored.unfit).toContain('EVENT_NAME is missing');
  });

  it('keeps no timestamp Postgres could not store', () => {
    expect(storableOfflineRow(row({ TIMESTAMP_X: 'yesterday' })).bitrixTimestamp).toBeNull();
    expect(
      storableOfflineRow(row({ TIMESTAMP_X: '-100000-01-01T00:00:00Z' })).bitrixTimestamp,
    ).toBeNull();
    expect(storableOfflineRow(row({ TIMESTAMP_X: undefined })).bitrixTimestamp).toBeNull();
  });

  it('stores missing data as JSON null', () => {
    const stored = storableOfflineRow(row({ EVENT_DATA: undefined, EVENT_ADDITIONAL: false }));
    expect(stored.data).toBe('null');
    expect(stored.additional).toBe('false');
  });
});

describe('quarantinedOfflineRow', () => {
  it('keeps the payload as one JSON string and says why, without an ordering key', () => {
    const stored = storableOfflineRow(row());
    const quarantined = quarantinedOfflineRow(stored, '54001 stack depth limit exceeded');
    expect(JSON.parse(quarantined.data)).toBe(stored.data);
    expect(JSON.parse(quarantined.additional)).toBe(stored.additional);
    expect(quarantined.orderingKey).toBeNull();
    expect(quarantined.unfit).toContain('54001 stack depth limit exceeded');
    expect(quarantined.queueId).toBe('17');
  });
});

describe('storableJson', () => {
  it('cleans an online event the same way and returns the value used for its ordering key', () => {
    expect(storableJson({ FIELDS: { ID: '1\u0000' } })).toEqual({
      value: { FIELDS: { ID: '1\uFFFD' } },
      json: '{"FIELDS":{"ID":"1\uFFFD"}}',
      replacedCharacters: 1,
    });
    expect(storableJson(undefined).json).toBe('null');
  });
});
