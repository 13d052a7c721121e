/** Object-change events: ON<ENTITY><ADD|UPDATE|DELETE>, e.g. ONCRMDEALUPDATE. */
const OBJECT_CHANGE_EVENT = /^ON([A-Z0-9_]+?)(ADD|UPDATE|DELETE)$/;
const MAX_ORDERING_KEY_LENGTH = 200;

/**
 * The key under which events must be handled in order: changes of one object (`CRMDEAL:123`
 * for ONCRMDEALADD/UPDATE/DELETE with data.FIELDS.ID = 123). Events that name no object get
 * null and are handled in any order.
 */
export function orderingKeyFor(eventName: string, data: unknown): string | null {
  const match = OBJECT_CHANGE_EVENT.exec(eventName.toUpperCase());
  if (!match) return null;
  const fields = (data as { FIELDS?: unknown } | null | undefined)?.FIELDS;
  const id = (fields as { ID?: unknown } | null | undefined)?.ID;
  if ((typeof id !== 'string' && typeof id !== 'number') || String(id).trim() === '') return null;
  return `${match[1]}:${String(id).trim()}`.slice(0, MAX_ORDERING_KEY_LENGTH);
}
