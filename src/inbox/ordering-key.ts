/**
 * Object events: ON<ENTITY><ADD|UPDATE|DELETE|MOVETOCATEGORY>, optionally with a smart-process
 * type suffix: ONCRMDEALUPDATE, ONCRMDEALMOVETOCATEGORY, ONTASKADD, ONCRMDYNAMICITEMUPDATE_128.
 */
const OBJECT_EVENT = /^ON([A-Z0-9_]+?)(ADD|UPDATE|DELETE|MOVETOCATEGORY)(?:_(\d{1,10}))?$/;
/** Smart-process items: one line per type and item (`crm.item` ids are unique per type only). */
const DYNAMIC_ITEM_ENTITY = 'CRMDYNAMICITEM';
const MAX_ORDERING_KEY_LENGTH = 200;
/** The inbox's name for robot runs (src/robots/robot-form.ts), kept out of every object's line. */
const ROBOT_RUN_PREFIX = 'ROBOT:';

function fieldsId(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return null;
  const id = (value as { ID?: unknown }).ID;
  if ((typeof id !== 'string' && typeof id !== 'number') || String(id).trim() === '') return null;
  return String(id).trim();
}

function typeIdOf(data: unknown): string | null {
  const fields = (data as { FIELDS?: unknown } | null | undefined)?.FIELDS;
  if (typeof fields !== 'object' || fields === null) return null;
  const typeId = (fields as { ENTITY_TYPE_ID?: unknown }).ENTITY_TYPE_ID;
  if (typeof typeId === 'number' && Number.isSafeInteger(typeId)) return String(typeId);
  if (typeof typeId === 'string' && /^\d{1,10}$/.test(typeId.trim())) return typeId.trim();
  return null;
}

/**
 * The key under which events must be handled in order: the changes of one object.
 * - CRM objects (`contract`: data.FIELDS.ID): ONCRMDEALADD/UPDATE/DELETE and
 *   ONCRMDEALMOVETOCATEGORY of deal 123 share `CRMDEAL:123` (`on-crm-deal-move-to-category.md`).
 * - Tasks: data.FIELDS_AFTER.ID on add and update, FIELDS_BEFORE.ID on delete (where FIELDS_AFTER
 *   is the string `undefined`): `TASK:45` (`api-reference/tasks/events-tasks/`).
 * - Smart-process items: ONCRMDYNAMICITEMUPDATE (with data.FIELDS.ENTITY_TYPE_ID) and the per-type
 *   ONCRMDYNAMICITEMUPDATE_128 share `CRMDYNAMICITEM_128:7`.
 * Events that name no object (no such id) get null: they are handled in any order, side by side.
 * Robot runs (`ROBOT:<CODE>`) get null too, though they name a document: Bitrix24 runs a stage's
 * robots side by side and starts a robot after a waiting one only once it was answered, and a run
 * held behind its deal's events (a backlog, or a dead one holding the line until an operator acts)
 * would outlive the robot's wait. See docs/bitrix24/robots.md, "Ordering".
 */
export function orderingKeyFor(eventName: string, data: unknown): string | null {
  if (eventName.startsWith(ROBOT_RUN_PREFIX)) return null;
  const match = OBJECT_EVENT.exec(eventName.toUpperCase());
  if (!match) return null;
  const [, baseEntity, , suffix] = match;
  const payload = data as { FIELDS?: unknown; FIELDS_AFTER?: unknown; FIELDS_BEFORE?: unknown };
  if (typeof data !== 'object' || data === null) return null;
  const id =
    fieldsId(payload.FIELDS) ?? fieldsId(payload.FIELDS_AFTER) ?? fieldsId(payload.FIELDS_BEFORE);
  if (id === null) return null;
  let entity = baseEntity;
  if (baseEntity === DYNAMIC_ITEM_ENTITY) {
    const typeId = suffix ?? typeIdOf(data);
    // Without its type, an item id names no object: ids repeat across smart processes.
    if (typeId === null) return null;
    entity = `${DYNAMIC_ITEM_ENTITY}_${typeId}`;
  } else if (suffix !== undefined) {
    entity = `${baseEntity}_${suffix}`;
  }
  return `${entity}:${id}`.slice(0, MAX_ORDERING_KEY_LENGTH);
}
