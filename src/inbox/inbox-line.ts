import type { EntityManager } from 'typeorm';

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
  const keys = [...new Set(orderingKeys.filter((key): key is string => key !== null))];
  if (keys.length === 0) return;
  // pg_advisory_xact_lock is volatile, so Postgres calls it after the sort, in the sorted order.
  await manager.query(
    `SELECT pg_advisory_xact_lock(${LINE_LOCK_SPACE}, line.hash)
     FROM (SELECT DISTINCT hashtext($1::text || chr(31) || key) AS hash FROM unnest($2::text[]) AS key) AS line
     ORDER BY line.hash`,
    [memberId, keys],
  );
}

/**
 * Statuses that keep an event in its line: later events of the object wait for it. A `dead` event
 * holds the line until the operator replays or discards it.
 */
export const UNFINISHED_STATUSES_SQL = `('pending','failed','dead')`;

/**
 * After an event of the line left it (processed, unhandled, discarded): its new head, if that one
 * waits to be run, becomes due now. Must run under the line's lock, after the change that ended
 * the event, in the same transaction.
 */
export async function promoteLineHead(
  manager: EntityManager,
  memberId: string,
  orderingKey: string,
): Promise<void> {
  await manager.query(
    `UPDATE stored_events SET next_attempt_at = now()
     WHERE id = (SELECT id FROM stored_events
                 WHERE member_id = $1 AND ordering_key = $2
                   AND status IN ${UNFINISHED_STATUSES_SQL}
                 ORDER BY id LIMIT 1)
       AND status IN ('pending','failed') AND next_attempt_at IS NULL`,
    [memberId, orderingKey],
  );
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
