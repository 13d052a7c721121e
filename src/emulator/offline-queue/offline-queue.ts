import type { Clock } from '../clock';
import { randomLowercaseAlphanumerics } from '../random-identifiers';
import { defaultMessageId } from './message-id';
import {
  compareByOrder,
  exactProcessId,
  isLowestIdFirst,
  isOldestFirst,
  matchesFilter,
  onlyReservedRows,
  type FilterCondition,
  type OrderTerm,
  type TieBreak,
} from './offline-query';
import type { OfflineRow } from './offline-row';

export interface OfflineWrite {
  readonly eventName: string;
  readonly eventData: unknown;
  readonly userId: number;
  readonly connectorId: string;
  /** Producer-supplied MESSAGE_ID; otherwise md5 of name and data. */
  readonly messageId?: string;
}

export type OfflineWriteOutcome = 'inserted' | 'merged';

export interface OfflineSelection {
  readonly conditions: readonly FilterCondition[];
  readonly order: readonly OrderTerm[];
  readonly limit: number;
  /** How rows tied in every ordered field come back (default: lowest ID first). */
  readonly tieBreak?: TieBreak;
}

/** How a `clear` narrows the batch; without one the whole batch goes. */
export type ClearSelector =
  { readonly ids: readonly number[] } | { readonly messageIds: readonly string[] };

export interface OfflineQueueCounts {
  /** Waiting, not reserved, not failed. */
  readonly unreserved: number;
  /** In some process_id's batch, failed or not. */
  readonly reserved: number;
  /** Released by `event.offline.error`, waiting for a `get` with error=1. */
  readonly error: number;
  readonly total: number;
}

/** Rows written at the same second keep their write order; the real table leaves such ties undefined. */
class RowsByTimestamp implements Iterable<OfflineRow> {
  private rows = new Map<number, OfflineRow>();
  private newestMs = -Infinity;

  get size(): number {
    return this.rows.size;
  }

  add(row: OfflineRow): void {
    this.rows.set(row.id, row);
    if (row.timestampMs >= this.newestMs) {
      this.newestMs = row.timestampMs;
      return;
    }
    // Only rows released by event.offline.error come back with an old TIMESTAMP_X: re-sort then.
    const sorted = [...this.rows.values()].sort((a, b) => a.timestampMs - b.timestampMs);
    this.rows = new Map(sorted.map((sortedRow) => [sortedRow.id, sortedRow]));
  }

  delete(row: OfflineRow): void {
    this.rows.delete(row.id);
  }

  [Symbol.iterator](): Iterator<OfflineRow> {
    return this.rows.values();
  }
}

interface WaitingRows {
  readonly normal: RowsByTimestamp;
  readonly failed: RowsByTimestamp;
}

/**
 * A portal's offline event queue for the emulated app, with the exact semantics of contract §1–2:
 * upsert on (MESSAGE_ID, CONNECTOR_ID, PROCESS_ID), reservation by process_id, error rows.
 * Rows are indexed by ID, by message and by place (waiting per connector in TIMESTAMP_X order, or
 * reserved per batch), so draining costs what the page costs, not what the queue holds.
 */
export class OfflineQueue {
  private lastId = 0;
  /** Every row, in ID order. */
  private readonly rows = new Map<number, OfflineRow>();
  private readonly waiting = new Map<string, WaitingRows>();
  private readonly batches = new Map<string, Map<number, OfflineRow>>();
  private readonly rowsByMessage = new Map<string, Set<OfflineRow>>();

  constructor(private readonly clock: Clock) {}

  write(input: OfflineWrite): OfflineWriteOutcome {
    const messageId = input.messageId ?? defaultMessageId(input.eventName, input.eventData);
    const timestampMs = Math.floor(this.clock.now() / 1000) * 1000;
    const unreserved = this.findUnreserved(input.connectorId, messageId);
    if (unreserved !== undefined) {
      // The upsert's UPDATE branch: same ID and ERROR, fresh data and TIMESTAMP_X.
      this.unplace(unreserved);
      unreserved.eventData = input.eventData;
      unreserved.userId = input.userId;
      unreserved.timestampMs = timestampMs;
      this.place(unreserved);
      return 'merged';
    }
    const row: OfflineRow = {
      id: ++this.lastId,
      messageId,
      eventName: input.eventName,
      connectorId: input.connectorId,
      eventData: input.eventData,
      userId: input.userId,
      timestampMs,
      processId: '',
      error: 0,
    };
    this.rows.set(row.id, row);
    const key = messageKey(row.connectorId, row.messageId);
    const sameMessage = this.rowsByMessage.get(key);
    if (sameMessage === undefined) this.rowsByMessage.set(key, new Set([row]));
    else sameMessage.add(row);
    this.place(row);
    return 'inserted';
  }

  /** Step 1 of `event.offline.get`: marks up to `limit` waiting rows with a new process_id. */
  reserve(connectorId: string, failed: boolean, selection: OfflineSelection): string {
    const processId = randomLowercaseAlphanumerics(32);
    const waiting = this.waitingRows(connectorId);
    const chosen = pick(failed ? waiting.failed : waiting.normal, selection, true);
    for (const row of chosen) {
      this.unplace(row);
      row.processId = processId;
      this.place(row);
    }
    return processId;
  }

  /** Step 2 of `event.offline.get`: the batch's rows with the given ERROR flag, at most `limit`. */
  readBatch(
    processId: string,
    connectorId: string,
    failed: boolean,
    selection: OfflineSelection,
  ): OfflineRow[] {
    const flag = failed ? 1 : 0;
    if (processId === '') {
      const waiting = this.waitingRows(connectorId);
      return pick(failed ? waiting.failed : waiting.normal, selection, true);
    }
    const rows = this.batchRows(processId, connectorId).filter((row) => row.error === flag);
    return pick(rows, selection, false);
  }

  /** `DELETE WHERE PROCESS_ID=pid AND CONNECTOR_ID=…`; pid '' means every waiting row. */
  deleteBatch(processId: string, connectorId: string): number {
    const rows = this.batchRows(processId, connectorId);
    for (const row of rows) this.remove(row);
    return rows.length;
  }

  /** `event.offline.clear`: the batch, or only its rows with the given IDs or MESSAGE_IDs. */
  clear(processId: string, connectorId: string, selector?: ClearSelector): void {
    if (selector === undefined) {
      this.deleteBatch(processId, connectorId);
    } else if ('messageIds' in selector) {
      for (const messageId of selector.messageIds) {
        for (const row of [...this.messageRows(connectorId, messageId)]) {
          if (row.processId === processId) this.remove(row);
        }
      }
    } else {
      for (const id of selector.ids) {
        const row = this.rows.get(id);
        if (row?.processId === processId && row.connectorId === connectorId) this.remove(row);
      }
    }
  }

  /**
   * `event.offline.error` (EventOfflineTable::markError): non-error rows with these messages outside
   * the batch are deleted; the batch's rows become ERROR=1 and go back to the queue; error rows stay.
   */
  markError(processId: string, connectorId: string, messageIds: readonly string[]): void {
    for (const messageId of new Set(messageIds)) {
      const rows = [...this.messageRows(connectorId, messageId)];
      for (const row of rows) {
        if (row.error === 0 && row.processId !== processId) this.remove(row);
      }
      for (const row of rows) {
        if (row.error !== 0 || row.processId !== processId || !this.rows.has(row.id)) continue;
        if (processId !== '' && this.findUnreserved(connectorId, messageId) !== undefined) {
          // The unique key allows one waiting row per message: the waiting error row stands for it.
          this.remove(row);
          continue;
        }
        this.unplace(row);
        row.error = 1;
        row.processId = '';
        this.place(row);
      }
    }
  }

  /** `event.offline.list`: one page plus the total of matching rows. */
  list(
    connectorId: string,
    conditions: readonly FilterCondition[],
    order: readonly OrderTerm[],
    offset: number,
    pageSize: number,
  ): { rows: OfflineRow[]; total: number } {
    const matches = (row: OfflineRow): boolean =>
      row.connectorId === connectorId && matchesFilter(row, conditions);
    const processId = exactProcessId(conditions);
    if (processId === undefined && !onlyReservedRows(conditions) && isLowestIdFirst(order)) {
      // The common case walks the ID-ordered index once, without sorting.
      const page: OfflineRow[] = [];
      let total = 0;
      for (const row of this.rows.values()) {
        if (!matches(row)) continue;
        if (total >= offset && page.length < pageSize) page.push(row);
        total++;
      }
      return { rows: page, total };
    }
    const candidates =
      processId !== undefined
        ? this.batchRows(processId, connectorId)
        : onlyReservedRows(conditions)
          ? [...this.batches.values()].flatMap((batch) => [...batch.values()])
          : [...this.rows.values()];
    const sorted = candidates.filter(matches).sort(compareByOrder(order));
    return { rows: sorted.slice(offset, offset + pageSize), total: sorted.length };
  }

  /** Bitrix's daily cleanProcessAgent: reserved rows whose TIMESTAMP_X is older than the cut-off. */
  purgeReserved(olderThanMs: number): number {
    const cutOff = this.clock.now() - olderThanMs;
    let purged = 0;
    for (const batch of [...this.batches.values()]) {
      for (const row of [...batch.values()]) {
        if (row.timestampMs < cutOff) {
          this.remove(row);
          purged++;
        }
      }
    }
    return purged;
  }

  /** Uninstall drops the app's whole queue. */
  removeAll(): void {
    this.rows.clear();
    this.waiting.clear();
    this.batches.clear();
    this.rowsByMessage.clear();
  }

  counts(): OfflineQueueCounts {
    let unreserved = 0;
    let error = 0;
    for (const waiting of this.waiting.values()) {
      unreserved += waiting.normal.size;
      error += waiting.failed.size;
    }
    let reserved = 0;
    for (const batch of this.batches.values()) reserved += batch.size;
    return { unreserved, reserved, error, total: this.rows.size };
  }

  reservedProcessIds(): string[] {
    return [...this.batches.keys()];
  }

  private findUnreserved(connectorId: string, messageId: string): OfflineRow | undefined {
    for (const row of this.messageRows(connectorId, messageId)) {
      if (row.processId === '') return row;
    }
    return undefined;
  }

  private batchRows(processId: string, connectorId: string): OfflineRow[] {
    if (processId === '') {
      const waiting = this.waitingRows(connectorId);
      return [...waiting.normal, ...waiting.failed];
    }
    const batch = this.batches.get(processId);
    return batch === undefined
      ? []
      : [...batch.values()].filter((row) => row.connectorId === connectorId);
  }

  private waitingRows(connectorId: string): WaitingRows {
    let waiting = this.waiting.get(connectorId);
    if (waiting === undefined) {
      waiting = { normal: new RowsByTimestamp(), failed: new RowsByTimestamp() };
      this.waiting.set(connectorId, waiting);
    }
    return waiting;
  }

  private messageRows(connectorId: string, messageId: string): ReadonlySet<OfflineRow> {
    return this.rowsByMessage.get(messageKey(connectorId, messageId)) ?? NO_ROWS;
  }

  private place(row: OfflineRow): void {
    if (row.processId === '') {
      const waiting = this.waitingRows(row.connectorId);
      (row.error === 1 ? waiting.failed : waiting.normal).add(row);
      return;
    }
    let batch = this.batches.get(row.processId);
    if (batch === undefined) {
      batch = new Map();
      this.batches.set(row.processId, batch);
    }
    batch.set(row.id, row);
  }

  private unplace(row: OfflineRow): void {
    if (row.processId === '') {
      const waiting = this.waitingRows(row.connectorId);
      (row.error === 1 ? waiting.failed : waiting.normal).delete(row);
      return;
    }
    const batch = this.batches.get(row.processId);
    batch?.delete(row.id);
    if (batch?.size === 0) this.batches.delete(row.processId);
  }

  private remove(row: OfflineRow): void {
    this.unplace(row);
    this.rows.delete(row.id);
    const key = messageKey(row.connectorId, row.messageId);
    const sameMessage = this.rowsByMessage.get(key);
    sameMessage?.delete(row);
    if (sameMessage?.size === 0) this.rowsByMessage.delete(key);
  }
}

const NO_ROWS: ReadonlySet<OfflineRow> = new Set();

function messageKey(connectorId: string, messageId: string): string {
  return `${connectorId}\u0000${messageId}`;
}

/** `ORDER BY <order> LIMIT <limit>` over a source, streaming when it is already in that order. */
function pick(
  source: Iterable<OfflineRow>,
  selection: OfflineSelection,
  sourceIsOldestFirst: boolean,
): OfflineRow[] {
  const order = compareByOrder(selection.order, selection.tieBreak);
  if (sourceIsOldestFirst && isOldestFirst(selection.order)) {
    // The source is in TIMESTAMP_X order; rows tied with the last one picked may still come
    // before it once ties are broken, so they are read too before the cut.
    const picked: OfflineRow[] = [];
    for (const row of source) {
      if (!matchesFilter(row, selection.conditions)) continue;
      if (picked.length >= selection.limit && row.timestampMs !== picked.at(-1)?.timestampMs) {
        break;
      }
      picked.push(row);
    }
    return picked.sort(order).slice(0, selection.limit);
  }
  return [...source]
    .filter((row) => matchesFilter(row, selection.conditions))
    .sort(order)
    .slice(0, selection.limit);
}
