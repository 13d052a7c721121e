/** What the emulated portal knows about an event it can deliver. */
export interface EventDefinition {
  /** The app scope that makes the event bindable; null for events any app may bind. */
  readonly scope: string | null;
  /** ONOFFLINEEVENT refuses offline bindings (`disableOffline`). */
  readonly offlineAllowed: boolean;
  /** Events declared `sendRefreshToken` carry auth[refresh_token] (contract §4). */
  readonly sendsRefreshToken: boolean;
  /** Only ONOFFLINEEVENT declares `allowOptions` (minTimeout). */
  readonly acceptsMinTimeout: boolean;
}

const plain = (scope: string | null): EventDefinition => ({
  scope,
  offlineAllowed: true,
  sendsRefreshToken: false,
  acceptsMinTimeout: false,
});

const crudEvents = (scope: string, prefix: string, entities: readonly string[]) =>
  entities.flatMap((entity) =>
    ['ADD', 'UPDATE', 'DELETE'].map(
      (action) => [`${prefix}${entity}${action}`, plain(scope)] as const,
    ),
  );

/** The events the emulated portal offers, by upper-case name (names are case-insensitive). */
export const EVENT_CATALOG: ReadonlyMap<string, EventDefinition> = new Map<string, EventDefinition>(
  [
    ['ONAPPINSTALL', { ...plain(null), sendsRefreshToken: true }],
    ['ONAPPUPDATE', { ...plain(null), sendsRefreshToken: true }],
    ['ONAPPTEST', { ...plain(null), sendsRefreshToken: true }],
    ['ONAPPUNINSTALL', plain(null)],
    ['ONAPPPAYMENT', plain(null)],
    [
      'ONOFFLINEEVENT',
      { scope: null, offlineAllowed: false, sendsRefreshToken: true, acceptsMinTimeout: true },
    ],
    ...crudEvents('crm', 'ONCRM', ['LEAD', 'DEAL', 'CONTACT', 'COMPANY']),
    ...crudEvents('task', 'ONTASK', ['']),
    ['ONUSERADD', plain('user')],
  ],
);

/** An event the app may bind: known to the portal and within the app's scopes. */
export function findBindableEvent(
  eventName: string,
  appScopes: readonly string[],
): EventDefinition | undefined {
  const definition = EVENT_CATALOG.get(eventName);
  if (definition === undefined) return undefined;
  return definition.scope === null || appScopes.includes(definition.scope) ? definition : undefined;
}
