import { chunkCommands, commandTimes, encodeCommand, mergeBatchAnswers } from './batch-commands';

describe('encodeCommand', () => {
  it('writes parameters as a PHP bracket query, booleans as 1/0', () => {
    expect(encodeCommand({ method: 'app.info' })).toBe('app.info');
    const encoded = encodeCommand({
      method: 'event.offline.clear',
      params: { process_id: 'abc', id: [1, 2], filter: { '>ID': 5 }, clear: false },
    });
    const [method, query] = encoded.split('?');
    expect(method).toBe('event.offline.clear');
    expect([...new URLSearchParams(query)]).toEqual([
      ['process_id', 'abc'],
      ['id[0]', '1'],
      ['id[1]', '2'],
      ['filter[>ID]', '5'],
      ['clear', '0'],
    ]);
  });
});

describe('chunkCommands', () => {
  it('splits into requests of at most 50 commands, keeping order and keys', () => {
    const commands = Object.fromEntries(
      Array.from({ length: 120 }, (_, index) => [`c${index}`, { method: 'app.info' }]),
    );
    const chunks = chunkCommands(commands);
    expect(chunks.map((chunk) => Object.keys(chunk).length)).toEqual([50, 50, 20]);
    expect(Object.keys(chunks[1])[0]).toBe('c50');
    expect(chunkCommands({})).toEqual([]);
  });
});

describe('mergeBatchAnswers', () => {
  it('merges per-command results and errors, and reads PHP empty maps and lists as maps', () => {
    const merged = mergeBatchAnswers([
      {
        answer: {
          result: { a: true, b: [1] },
          result_error: [],
          result_total: { b: 12 },
          result_next: { b: 50 },
          result_time: [],
        },
      },
      {
        answer: {
          result: [],
          result_error: { c: { error: 'ERROR_ARGUMENT', error_description: 'bad' } },
          result_total: [],
          result_next: [],
        },
      },
      { answer: { result: ['zero', 'one'], result_error: [] } },
    ]);
    expect(merged).toEqual({
      result: { a: true, b: [1], 0: 'zero', 1: 'one' },
      errors: { c: { error: 'ERROR_ARGUMENT', error_description: 'bad' } },
      total: { b: 12 },
      next: { b: 50 },
    });
  });

  it('hands out per-command times for the operating-time budget', () => {
    const time = {
      start: 1,
      finish: 2,
      duration: 1,
      processing: 1,
      date_start: '',
      date_finish: '',
      operating: 3,
    };
    expect(commandTimes({ result_time: { a: time } })).toEqual({ a: time });
    expect(commandTimes({ result_time: [] })).toEqual({});
  });
});
