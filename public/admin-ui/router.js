// Hash routes: #/portals?…, #/portals/<memberId>, #/events?…, #/events/<id>, #/stats.

/** The current route: its path segments and its query parameters. */
export function currentRoute() {
  const hash = window.location.hash.replace(/^#/, '') || '/portals';
  const [pathPart, queryPart = ''] = hash.split('?');
  const segments = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { segments, params: Object.fromEntries(new URLSearchParams(queryPart)) };
}

/** A hash link for a path and parameters (empty ones left out). */
export function href(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(name, value);
  }
  const text = query.toString();
  return `#${path}${text ? `?${text}` : ''}`;
}

export function navigate(path, params = {}) {
  window.location.hash = href(path, params);
}

/**
 * Keyset paging over `{items, nextCursor}`: the API only goes forward, so the cursors of the pages
 * before this one are remembered here (per list and filters) for "Previous".
 */
const trails = new Map();

export function pager({ list, filters, cursor, nextCursor, path, shown }) {
  const key = `${list}|${JSON.stringify(filters)}`;
  let trail = trails.get(key);
  if (!trail || (trail.at(-1) ?? null) !== (cursor ?? null)) {
    // Arrived here some other way (a link, a reload): the trail before this page is unknown.
    trail = trail?.includes(cursor ?? null)
      ? trail.slice(0, trail.indexOf(cursor ?? null) + 1)
      : [cursor ?? null];
    trails.set(key, trail);
  }
  const pageNumber = trail.length;
  const previous = trail.length > 1 ? trail[trail.length - 2] : undefined;
  return {
    pageNumber,
    previousHref: cursor ? href(path, { ...filters, cursor: previous ?? undefined }) : null,
    next: nextCursor
      ? () => {
          trail.push(nextCursor);
          navigate(path, { ...filters, cursor: nextCursor });
        }
      : null,
    shown,
  };
}
