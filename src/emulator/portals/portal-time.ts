/**
 * Portals answer in their own time zone. The emulated ones sit at UTC+3 (Bitrix24's home time zone)
 * rather than UTC, so a client that ignores the offset in TIMESTAMP_X or `date_start` shows up in tests.
 */
const PORTAL_OFFSET = { minutes: 180, text: '+03:00' };

/** `TIME_ZONE_OFFSET` of the portal's users, in seconds. */
export const PORTAL_UTC_OFFSET_SECONDS = PORTAL_OFFSET.minutes * 60;

/** ISO-8601 with the portal's offset and whole seconds, like `2024-07-18T12:32:31+03:00`. */
export function formatPortalDateTime(milliseconds: number): string {
  const wholeSeconds = Math.floor(milliseconds / 1000) * 1000;
  const local = new Date(wholeSeconds + PORTAL_OFFSET.minutes * 60_000).toISOString().slice(0, 19);
  return `${local}${PORTAL_OFFSET.text}`;
}
