import qs from 'qs';
import type { BatchCommand, BatchResult, RestErrorBody, RestTime } from './bitrix24.types';

/** Bitrix24 runs at most this many commands per `batch` request (BATCH_MAX_LENGTH, contract §8). */
export const BATCH_MAX_COMMANDS = 50;

/** The `result` of one `batch` answer as Bitrix24 sends it: empty maps arrive as `[]`. */
export interface RawBatchAnswer {
  result?: unknown;
  result_error?: unknown;
  result_total?: unknown;
  result_next?: unknown;
  result_time?: unknown;
}

/**
 * `cmd[key]` is "method?query" with the query in PHP's bracket form, which Bitrix24 parses with
 * parse_str. Booleans become 1/0: PHP would read "true" as a string.
 */
export function encodeCommand(command: BatchCommand): string {
  if (!command.params || Object.keys(command.params).length === 0) return command.method;
  const query = qs.stringify(command.params, {
    filter: (_prefix, value: unknown) => (typeof value === 'boolean' ? (value ? 1 : 0) : value),
  });
  return `${command.method}?${query}`;
}

/** Splits commands into `cmd` maps of at most BATCH_MAX_COMMANDS, keeping their order. */
export function chunkCommands(commands: Record<string, BatchCommand>): Record<string, string>[] {
  const chunks: Record<string, string>[] = [];
  for (const [index, [key, command]] of Object.entries(commands).entries()) {
    if (index % BATCH_MAX_COMMANDS === 0) chunks.push({});
    chunks[chunks.length - 1][key] = encodeCommand(command);
  }
  return chunks;
}

/** PHP encodes an empty map as `[]` and a map with keys 0..n-1 as a list: both back to a map. */
function asMap<T>(value: unknown): Record<string, T> {
  if (Array.isArray(value)) {
    return Object.fromEntries(value.map((item: T, index) => [String(index), item]));
  }
  return typeof value === 'object' && value !== null ? (value as Record<string, T>) : {};
}

/** Joins the answers of one or more `batch` requests into one result keyed as the caller asked. */
export function mergeBatchAnswers(
  answers: { answer: RawBatchAnswer; time?: RestTime }[],
): BatchResult {
  const merged: BatchResult = { result: {}, errors: {}, total: {}, next: {} };
  for (const { answer, time } of answers) {
    Object.assign(merged.result, asMap<unknown>(answer.result));
    Object.assign(merged.errors, asMap<RestErrorBody>(answer.result_error));
    Object.assign(merged.total, asMap<number>(answer.result_total));
    Object.assign(merged.next, asMap<number>(answer.result_next));
    if (time) merged.time = time;
  }
  return merged;
}

/** Per-command `time` blocks of one batch answer, for the operating-time budget of each method. */
export function commandTimes(answer: RawBatchAnswer): Record<string, RestTime> {
  return asMap<RestTime>(answer.result_time);
}
