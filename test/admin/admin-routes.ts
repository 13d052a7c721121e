/** Every route of the admin API (PRODUCT.md), as OpenAPI spells its path. */
export const ADMIN_ROUTES: ReadonlyArray<{ method: string; path: string }> = [
  { method: 'GET', path: '/admin/portals' },
  { method: 'GET', path: '/admin/portals/{memberId}' },
  { method: 'DELETE', path: '/admin/portals/{memberId}' },
  { method: 'POST', path: '/admin/portals/{memberId}/drain' },
  { method: 'POST', path: '/admin/portals/{memberId}/rebind' },
  { method: 'POST', path: '/admin/portals/{memberId}/refresh-token' },
  { method: 'GET', path: '/admin/events' },
  { method: 'GET', path: '/admin/events/{id}' },
  { method: 'POST', path: '/admin/events/{id}/replay' },
  { method: 'POST', path: '/admin/events/{id}/discard' },
  { method: 'GET', path: '/admin/stats' },
];

/** A concrete URL for a route, with its parameters filled in. */
export function urlOf(path: string, params: { memberId: string; id: string }): string {
  return path.replace('{memberId}', params.memberId).replace('{id}', params.id);
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
