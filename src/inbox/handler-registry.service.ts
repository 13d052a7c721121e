import { Injectable, OnModuleInit, Scope } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { EntityManager } from 'typeorm';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { AppLogger } from '../logging/app-logger';
import type { InboxEventHandler } from './inbox-event';
import { UncallableHandlerProviderError } from './inbox.errors';
import { BITRIX24_EVENT_HANDLER } from './on-bitrix24-event.decorator';
import type { StoredEventEntity } from './stored-event.entity';

export interface RegisteredHandler {
  /** `Class.method`, as recorded on every attempt. */
  readonly name: string;
  readonly run: InboxEventHandler;
  /**
   * Keeps what the handler returned, inside the transaction that records the successful run (so
   * it is kept exactly when the run counts); robots keep their answer this way.
   */
  readonly recordResult?: (
    manager: EntityManager,
    event: StoredEventEntity,
    result: unknown,
  ) => Promise<void>;
  /** After that transaction committed: act on what recordResult kept. */
  readonly afterRecorded?: (event: StoredEventEntity) => void;
}

/** The vendor's handlers, found at start by their @OnBitrix24Event decorators. */
@Injectable()
export class HandlerRegistry implements OnModuleInit {
  private readonly byEvent = new Map<string, RegisteredHandler[]>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly appLogger: AppLogger,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const prototype = prototypeOf(wrapper);
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const eventNames = Reflect.getMetadata(BITRIX24_EVENT_HANDLER, method) as
          string[] | undefined;
        if (!eventNames) continue;
        const className = (prototype.constructor as { name: string }).name;
        // The inbox calls handlers outside any request, on the one instance made at start: a
        // provider made per request or per consumer would have its handlers never called.
        const unfit = unfitScope(wrapper);
        if (unfit) throw new UncallableHandlerProviderError(className, methodName, unfit);
        const instance = wrapper.instance as object;
        const handler: RegisteredHandler = {
          name: `${className}.${methodName}`,
          run: (method as InboxEventHandler).bind(instance),
        };
        for (const eventName of eventNames) {
          this.byEvent.set(eventName, [...(this.byEvent.get(eventName) ?? []), handler]);
        }
      }
    }
    this.appLogger.child('inbox').info(
      {
        handlers: Object.fromEntries(
          [...this.byEvent].map(([event, handlers]) => [event, handlers.map((h) => h.name)]),
        ),
      },
      'event handlers registered',
    );
  }

  /** Adds a handler found by another feature (robots) under the event name it stores runs as. */
  register(eventName: string, handler: RegisteredHandler): void {
    const name = eventName.toUpperCase();
    this.byEvent.set(name, [...(this.byEvent.get(name) ?? []), handler]);
  }

  /** How many handlers the event with the most handlers has (0 when none is registered). */
  mostHandlersOfOneEvent(): number {
    let most = 0;
    for (const handlers of this.byEvent.values()) most = Math.max(most, handlers.length);
    return most;
  }

  handlersFor(eventName: string): readonly RegisteredHandler[] {
    return this.byEvent.get(eventName.toUpperCase()) ?? [];
  }
}

/** The methods' home of a provider: its instance's prototype, or its class's when none exists yet. */
function prototypeOf(wrapper: InstanceWrapper): Record<string, unknown> | undefined {
  const instance: unknown = wrapper.instance;
  if (instance && typeof instance === 'object') {
    return Object.getPrototypeOf(instance) as Record<string, unknown>;
  }
  const metatype: unknown = wrapper.metatype;
  // A factory provider's metatype is its factory: its prototype holds no handler methods.
  if (typeof metatype === 'function' && !wrapper.inject) {
    return metatype.prototype as Record<string, unknown> | undefined;
  }
  return undefined;
}

/** Why the registry cannot call this provider's methods, or undefined when it can. */
function unfitScope(wrapper: InstanceWrapper): string | undefined {
  if (wrapper.scope === Scope.REQUEST) {
    return wrapper.durable ? 'durable request-scoped' : 'request-scoped';
  }
  if (wrapper.isTransient) return 'transient';
  if (!wrapper.isDependencyTreeStatic()) return 'request-scoped through its dependencies';
  if (!wrapper.instance || typeof wrapper.instance !== 'object') return 'not instantiated at start';
  return undefined;
}
