import { parsePhpQuery, phpArrayToJson, phpTruthy } from './php-values';
import { restErrors } from './rest-error';
import {
  normalizeMethodName,
  type CallOutcome,
  type MethodCall,
  type MethodOutcome,
  type RestMethod,
} from './rest-method';

/** CRestUtil::BATCH_MAX_LENGTH. */
const BATCH_MAX_LENGTH = 50;

/** CRestUtil::processBatchElement: `$result[key][field]…` and its siblings, up to whitespace. */
const REFERENCE = /\$(result|next|total|time|error)(\S*)/gi;
const PATH_SEGMENT = /\[([^\]]+)\]/g;

type ResultKind = 'result' | 'next' | 'total' | 'time' | 'error';
/** What earlier commands produced, by kind and command key: what references point into. */
export type BatchResults = Record<ResultKind, Map<string, unknown>>;

/**
 * `batch` (contract §8, CRestProvider::methodsBatch): up to 50 commands run in order within this
 * one HTTP request, each with its own result or error; extras get ERROR_BATCH_LENGTH_EXCEEDED.
 * The request itself always succeeds.
 */
export const batchMethod: RestMethod = { scope: null, run: runBatch };

/** The methods a batch request will run, for fault matching and concurrency tracking. */
export function batchCommandMethods(params: Readonly<Record<string, unknown>>): string[] {
  const commandsKey = Object.keys(params).find((key) => key.toUpperCase() === 'CMD');
  const commands = commandsKey === undefined ? [] : commandEntries(params[commandsKey]);
  return commands
    .slice(0, BATCH_MAX_LENGTH)
    .flatMap(([, command]) => (typeof command === 'string' ? [splitCommand(command).method] : []));
}

async function runBatch(call: MethodCall): Promise<MethodOutcome> {
  const halt = phpTruthy(call.params.get('HALT'));
  const results: BatchResults = {
    result: new Map(),
    next: new Map(),
    total: new Map(),
    time: new Map(),
    error: new Map(),
  };
  let position = 0;
  for (const [key, command] of commandEntries(call.params.get('CMD'))) {
    let outcome: CallOutcome;
    if (position++ >= BATCH_MAX_LENGTH) {
      outcome = { ok: false, error: restErrors.batchLengthExceeded() };
    } else if (typeof command !== 'string') {
      continue;
    } else {
      const { method, query } = splitCommand(command);
      outcome =
        method === 'batch'
          ? { ok: false, error: restErrors.batchMethodNotAllowed() }
          : await call.runNested(method, substituteReferences(parsePhpQuery(query), results));
    }
    if (!outcome.ok) {
      results.error.set(key, outcome.error.toEnvelope());
      if (halt) break;
      continue;
    }
    results.result.set(key, outcome.outcome.result);
    if (outcome.outcome.next !== undefined) results.next.set(key, outcome.outcome.next);
    if (outcome.outcome.total !== undefined) results.total.set(key, outcome.outcome.total);
    results.time.set(key, outcome.time);
  }
  return {
    result: {
      result: phpArrayToJson(results.result),
      result_error: phpArrayToJson(results.error),
      result_total: phpArrayToJson(results.total),
      result_next: phpArrayToJson(results.next),
      result_time: phpArrayToJson(results.time),
    },
  };
}

/** `cmd` as PHP iterates it: an array-form `cmd[0]`, `cmd[1]` has keys '0', '1', … */
function commandEntries(commands: unknown): [string, unknown][] {
  if (Array.isArray(commands)) return commands.map((command, index) => [String(index), command]);
  if (commands !== null && typeof commands === 'object') return Object.entries(commands);
  return [];
}

/** `parse_url`: the path names the method, the query carries its parameters. */
function splitCommand(command: string): { method: string; query: string } {
  const separator = command.indexOf('?');
  return separator < 0
    ? { method: normalizeMethodName(command), query: '' }
    : {
        method: normalizeMethodName(command.slice(0, separator)),
        query: command.slice(separator + 1),
      };
}

/** Replaces references to earlier results in every parameter value, nested ones included. */
export function substituteReferences(
  params: Readonly<Record<string, unknown>>,
  results: BatchResults,
): Record<string, unknown> {
  const substitute = (value: unknown): unknown => {
    if (typeof value === 'string') return substituteInText(value, results);
    if (Array.isArray(value)) return value.map(substitute);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, substitute(item)]),
      );
    }
    return value;
  };
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, substitute(value)]));
}

/**
 * A value that is exactly one reference takes the referenced value whatever its type; references
 * inside longer text are replaced only by scalars. A missing path stops where it breaks.
 */
function substituteInText(text: string, results: BatchResults): unknown {
  let substituted = text;
  for (const [whole, kind, path] of text.matchAll(REFERENCE)) {
    const segments = [...path.matchAll(PATH_SEGMENT)].map((segment) => segment[1]);
    if (segments.length === 0) continue;
    const value = followPath(results[kind.toLowerCase() as ResultKind], segments);
    if (whole === text) return value;
    if (typeof value === 'string' || typeof value === 'number') {
      substituted = substituted.split(whole).join(String(value));
    }
  }
  return substituted;
}

function followPath(start: Map<string, unknown>, segments: readonly string[]): unknown {
  let value: unknown = start;
  for (const segment of segments) {
    const next =
      value instanceof Map
        ? (value as Map<string, unknown>).get(segment)
        : value !== null && typeof value === 'object'
          ? (value as Record<string, unknown>)[segment]
          : undefined;
    if (next === undefined || next === null) break;
    value = next;
  }
  return value instanceof Map ? Object.fromEntries(value) : value;
}
