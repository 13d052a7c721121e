import { Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { EntityManager } from 'typeorm';
import { AppLogger } from '../logging/app-logger';
import type { InboxEventHandler } from './inbox-event';
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
      const instance: unknown = wrapper.instance;
      // Request-scoped providers have no instance at start; a handler must be a singleton.
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const eventNames = Reflect.getMetadata(BITRIX24_EVENT_HANDLER, method) as
          string[] | undefined;
        if (!eventNames) continue;
        const handler: RegisteredHandler = {
          name: `${instance.constructor.name}.${methodName}`,
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
