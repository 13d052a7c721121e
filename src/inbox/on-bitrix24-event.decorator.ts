/** Metadata key under which a handler method lists the Bitrix24 events it handles. */
export const BITRIX24_EVENT_HANDLER = 'bitrix24:event-handler';

/**
 * Marks a provider method as a handler of one or more Bitrix24 events (e.g. 'ONCRMDEALUPDATE').
 * The inbox discovers these at start and calls them with each stored event of that name,
 * asynchronously, with retries. A handler must be idempotent: a retry or a replay runs it again.
 */
export function OnBitrix24Event(...eventNames: string[]): MethodDecorator {
  if (eventNames.length === 0 || eventNames.some((name) => !/^[A-Za-z0-9_]+$/.test(name))) {
    throw new Error(`@OnBitrix24Event needs event names such as 'ONCRMDEALUPDATE'`);
  }
  return (_target, _key, descriptor) => {
    const method = descriptor.value as object;
    const existing = (Reflect.getMetadata(BITRIX24_EVENT_HANDLER, method) as string[]) ?? [];
    Reflect.defineMetadata(
      BITRIX24_EVENT_HANDLER,
      [...new Set([...existing, ...eventNames.map((name) => name.toUpperCase())])],
      method,
    );
  };
}
