import {
  GET_FIELDS,
  LIST_FIELDS,
  LOWEST_ID_FIRST,
  OLDEST_FIRST,
  parseFilter,
  parseOrder,
} from '../../offline-queue/offline-query';
import type { ClearSelector } from '../../offline-queue/offline-queue';
import type { OfflineRow } from '../../offline-queue/offline-row';
import { formatPortalDateTime } from '../../portals/portal-time';
import type { MethodParams } from '../method-params';
import { phpArrayValues, phpIntval, phpString } from '../php-values';
import { restErrors } from '../rest-error';
import {
  requireAdmin,
  requireAppContext,
  type MethodCall,
  type MethodOutcome,
  type RestMethod,
} from '../rest-method';

/** IRestService::LIST_LIMIT: `get`'s default limit and `list`'s fixed page. */
const LIST_LIMIT = 50;

/** event.offline.get / clear / error / list with the semantics of contract §1–2. */
export const offlineEventMethods: Readonly<Record<string, RestMethod>> = {
  'event.offline.get': { scope: null, run: getOfflineEvents },
  'event.offline.clear': { scope: null, run: clearOfflineEvents },
  'event.offline.error': { scope: null, run: markOfflineEventErrors },
  'event.offline.list': { scope: null, run: listOfflineEvents },
};

function getOfflineEvents(call: MethodCall): MethodOutcome {
  const app = requireAppContext(call.caller);
  requireAdmin(call.caller);
  const { params, portal } = call;
  const clear = params.has('CLEAR') ? params.int('CLEAR') !== 0 : true;
  const passedProcessId = params.has('PROCESS_ID') ? params.string('PROCESS_ID').trim() : undefined;
  if (!clear && !portal.settings.features.rest_offline_extended) {
    throw restErrors.wrongLicense('extended offline events handling');
  }
  const limit = params.has('LIMIT') ? params.int('LIMIT') : LIST_LIMIT;
  const failed = params.int('ERROR') === 1;
  if (limit <= 0) throw restErrors.argument('Value must be positive integer', 'LIMIT');
  const selection = {
    conditions: parseFilter(present(params, 'FILTER'), GET_FIELDS, { arraysAllowed: false }),
    order: parseOrder(present(params, 'ORDER'), GET_FIELDS, OLDEST_FIRST),
    limit,
    tieBreak: portal.faults.unstableTies === true ? ('id-desc' as const) : ('id' as const),
  };
  const connectorId = app.authConnector;
  const processId = passedProcessId ?? portal.queue.reserve(connectorId, failed, selection);
  const rows = portal.queue.readBatch(processId, connectorId, failed, selection);
  // With clear=1 the whole batch goes, rows beyond `limit` of a passed process_id included.
  if (clear && rows.length > 0) portal.queue.deleteBatch(processId, connectorId);
  return {
    result: {
      process_id: !clear || passedProcessId !== undefined ? processId : null,
      events: rows.map((row) => describeRow(row, false)),
    },
    rows: rows.length,
  };
}

function clearOfflineEvents(call: MethodCall): MethodOutcome {
  const app = requireAppContext(call.caller);
  requireAdmin(call.caller);
  const { params, portal } = call;
  if (!params.has('PROCESS_ID')) throw restErrors.argumentNull('PROCESS_ID');
  const processId = params.string('PROCESS_ID').trim();
  portal.queue.clear(processId, app.authConnector, readClearSelector(params));
  return { result: true };
}

/** `message_id` wins over `id`; an empty list means the whole batch. */
function readClearSelector(params: MethodParams): ClearSelector | undefined {
  if (params.has('MESSAGE_ID')) {
    const messageIds = phpArrayValues(params.get('MESSAGE_ID'))?.map((value) =>
      phpString(value).trim(),
    );
    if (messageIds === undefined || messageIds.some((messageId) => messageId.length !== 32)) {
      throw restErrors.argument('Value must be array of MESSAGE_ID values', 'message_id');
    }
    return messageIds.length > 0 ? { messageIds } : undefined;
  }
  if (params.has('ID')) {
    const ids = phpArrayValues(params.get('ID'))?.map(phpIntval);
    if (ids === undefined || ids.some((id) => id <= 0)) {
      throw restErrors.argument('Value must be array of integers', 'id');
    }
    return ids.length > 0 ? { ids } : undefined;
  }
  return undefined;
}

function markOfflineEventErrors(call: MethodCall): MethodOutcome {
  const app = requireAppContext(call.caller);
  requireAdmin(call.caller);
  const { params, portal } = call;
  if (!params.has('PROCESS_ID')) throw restErrors.argumentNull('PROCESS_ID');
  const processId = params.string('PROCESS_ID').trim();
  const messageIds = phpArrayValues(params.get('MESSAGE_ID'));
  if (messageIds === undefined) {
    throw restErrors.argument('Value must be array of MESSAGE_ID values', 'message_id');
  }
  if (messageIds.length > 0) {
    portal.queue.markError(processId, app.authConnector, messageIds.map(phpString));
  }
  return { result: true };
}

function listOfflineEvents(call: MethodCall): MethodOutcome {
  const app = requireAppContext(call.caller);
  requireAdmin(call.caller);
  const { params, portal } = call;
  const conditions = parseFilter(present(params, 'FILTER'), LIST_FIELDS, { arraysAllowed: true });
  const order = parseOrder(present(params, 'ORDER'), LIST_FIELDS, LOWEST_ID_FIRST);
  const offset = Math.max(0, params.int('START'));
  const page = portal.queue.list(app.authConnector, conditions, order, offset, LIST_LIMIT);
  const reached = offset + page.rows.length;
  return {
    result: page.rows.map((row) => describeRow(row, true)),
    total: page.total,
    next: reached < page.total ? reached : undefined,
  };
}

/** PHP's `isset` treats null as absent. */
function present(params: MethodParams, name: string): unknown {
  return params.has(name) ? params.get(name) : undefined;
}

function describeRow(row: OfflineRow, withState: boolean): Record<string, unknown> {
  const described: Record<string, unknown> = {
    ID: String(row.id),
    TIMESTAMP_X: formatPortalDateTime(row.timestampMs),
    EVENT_NAME: row.eventName,
    EVENT_DATA: row.eventData ?? null,
    EVENT_ADDITIONAL: { user_id: String(row.userId) },
    MESSAGE_ID: row.messageId,
  };
  if (withState) {
    described.PROCESS_ID = row.processId;
    described.ERROR = String(row.error);
  }
  return described;
}
