import type { EntityManager } from 'typeorm';
import { runStatement, type Statement } from '../database/one-round-trip';

/**
 * An object's line: the stored events of one portal and ordering key, handled one at a time in id
 * order. Two rules keep that order cheap and right:
 *
 * - **Ids follow commit order within a line.** Every transaction that stores events of a line
 *   holds the line's lock (a transaction-scoped advisory lock) from before it takes ids until it
 *   commits, so an event that gets a lower id than another of its line is always visible first:
 *   no worker can see the later one and run it while the earlier one is still being committed.
 * - **Only the head of a line is due.** The line's first unfinished event (pending, failed or
 *   dead) is its head; the events behind it wait with `next_attempt_at` NULL, outside the range
 *   the claim scans, however many there are. Whoever ends a head (processed, unhandled,
 *   discarded) makes the next one due, under the same lock, so an event stored at that moment
 *   either sees the old head and waits, or is itself promoted.
 *
 * The claim still checks the line (an earlier unfinished event, or any running one) before it
 * runs anything: waiting rows are the speed, that check is the rule.
 */

/** The advisory locks of lines use the two-key form with this first key, apart from other locks. */
const LINE_LOCK_SPACE = 18_018;

/** One object's line: a portal and an ordering key. */
export interface Line {
  memberId: string;
  orderingKey: string;
}

/**
 * Takes the locks of the given lines of one portal for the rest of the transaction, in one
 * statement and in one order (sorted), so two transactions never wait on each other in a circle.
 * Lines are told apart by a 32-bit hash: two lines sharing one only wait for each other.
 */
export async function lockLines(
  manager: EntityManager,
  memberId: string,
  orderingKeys: readonly (string | null)[],
): Promise<void> {
  await lockLinesOfPortals(
    manager,
    orderingKeys
      .filter((key): key is string => key !== null)
      .map((orderingKey) => ({ memberId, orderingKey })),
  );
}

/**
 * lockLines for lines of any portals (a batch of recorded runs): one statement, every lock in the
 * same global order (by hash), so it never waits in a circle with a drain or another batch.
 */
export async function lockLinesOfPortals(
  manager: EntityManager,
  lines: readonly Line[],
): Promise<void> {
  const statement = lockLinesStatement(lines);
  if (statement) await runStatement(manager, statement);
}

/** The statement of lockLinesOfPortals (null for no lines), for callers that batch statements. */
export function lockLinesStatement(lines: readonly Line[]): Statement | null {
  if (lines.length === 0) return null;
  // pg_advisory_xact_lock is volatile, so Postgres calls it after the sort, in the sorted order.
  return {
    sql: `SELECT pg_advisory_xact_lock(${LINE_LOCK_SPACE}, line.hash)
     FROM (SELECT DISTINCT hashtext(l.member_id || chr(31) || l.ordering_key) AS hash
           FROM unnest($1::text[], $2::text[]) AS l(member_id, ordering_key)) AS line
     ORDER BY line.hash`,
    params: [lines.map((line) => line.memberId), lines.map((line) => line.orderingKey)],
  };
}

/**
 * Statuses that keep an event in its line: later events of the object wait for it. A `dead` event
 * holds the line until the operator replays or discards it.
 */
export const UNFINISHED_STATUSES_SQL = `('pending','failed','dead')`;

/**
 * After an event of each given line left it (processed, unhandled, discarded): the line's new
 * head, if that one waits to be run, becomes due now. One statement for any number of lines. Must
 * run under the lines' locks, after the changes that ended the events, in the same transaction.
 */
export async function promoteLineHeads(
  manager: EntityManager,
  lines: readonly Line[],
): Promise<void> {
  const statement = promoteLineHeadsStatement(lines);
  if (statement) await runStatement(manager, statement);
}

/**
 * The statement of promoteLineHeads (null for no lines). Promoting a line whose head is running,
 * dead or already due changes nothing, so it may be given any lines, not only those just left.
 */
export function promoteLineHeadsStatement(lines: readonly Line[]): Statement | null {
  if (lines.length === 0) return null;
  return {
    sql: `UPDATE stored_events AS s SET next_attempt_at = now()
     FROM (SELECT (SELECT h.id FROM stored_events h
                   WHERE h.member_id = l.member_id AND h.ordering_key = l.ordering_key
                     AND h.status IN ${UNFINISHED_STATUSES_SQL}
                   ORDER BY h.id LIMIT 1) AS id
           FROM (SELECT DISTINCT member_id, ordering_key
                 FROM unnest($1::text[], $2::text[]) AS l(member_id, ordering_key)) AS l) AS head
     WHERE s.id = head.id AND s.status IN ('pending','failed') AND s.next_attempt_at IS NULL`,
    params: [lines.map((line) => line.memberId), lines.map((line) => line.orderingKey)],
  };
}

/**
 * True when the event `alias` of the enclosing statement must not run now: an earlier event of its
 * line is unfinished, or another event of its line is running (a replay, or a run whose claim
 * has not lapsed). Each half is answered by its own small index.
 */
export function waitsInLine(alias: string): string {
  return `(${alias}.ordering_key IS NOT NULL AND (
    EXISTS (SELECT 1 FROM stored_events earlier
            WHERE earlier.member_id = ${alias}.member_id
              AND earlier.ordering_key = ${alias}.ordering_key
              AND earlier.status IN ${UNFINISHED_STATUSES_SQL} AND earlier.id < ${alias}.id)
    OR EXISTS (SELECT 1 FROM stored_events running
               WHERE running.member_id = ${alias}.member_id
                 AND running.ordering_key = ${alias}.ordering_key
                 AND running.claim_expires_at > now() AND running.id <> ${alias}.id)))`;
}
