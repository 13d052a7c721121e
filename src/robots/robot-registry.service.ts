import { Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { EntityManager } from 'typeorm';
import { HandlerRegistry } from '../inbox/handler-registry.service';
import type { InboxEvent } from '../inbox/inbox-event';
import type { StoredEventEntity } from '../inbox/stored-event.entity';
import { AppLogger } from '../logging/app-logger';
import {
  BITRIX24_ROBOT,
  type RobotDeclaration,
  type RobotHandler,
} from './bitrix24-robot.decorator';
import { RobotAnswers } from './robot-answers.service';
import { robotRunOf, robotEventName } from './robot-form';

export interface RegisteredRobot {
  readonly declaration: RobotDeclaration;
  /** `Class.method`, as recorded on every attempt. */
  readonly handlerName: string;
}

/**
 * The vendor's robots, found at start by their @Bitrix24Robot decorators. Each becomes an inbox
 * handler of its stored runs (event name `ROBOT:<code>`), so runs get the inbox's retries, dead
 * letters and replay; its return value becomes the run's answer.
 */
@Injectable()
export class RobotRegistry implements OnModuleInit {
  private readonly robots = new Map<string, RegisteredRobot>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly handlers: HandlerRegistry,
    private readonly answers: RobotAnswers,
    private readonly appLogger: AppLogger,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const declaration = Reflect.getMetadata(BITRIX24_ROBOT, method) as
          RobotDeclaration | undefined;
        if (!declaration) continue;
        const handlerName = `${instance.constructor.name}.${methodName}`;
        this.add(declaration, handlerName, (method as RobotHandler).bind(instance));
      }
    }
    if (this.robots.size > 0) {
      this.appLogger
        .child('robots')
        .info({ robots: [...this.robots.keys()] }, 'robot handlers registered');
    }
  }

  private add(declaration: RobotDeclaration, handlerName: string, handler: RobotHandler): void {
    const eventName = robotEventName(declaration.code);
    // Codes differing only in case would share an event name (event names are upper-case).
    const clash = [...this.robots.keys()].find((code) => robotEventName(code) === eventName);
    if (clash !== undefined) {
      throw new Error(`Robots ${clash} and ${declaration.code} need codes that differ beyond case`);
    }
    this.robots.set(declaration.code, { declaration, handlerName });
    this.handlers.register(eventName, {
      name: handlerName,
      run: (event: InboxEvent) => handler(robotRunOf(event)),
      recordResult: (manager: EntityManager, event: StoredEventEntity, result: unknown) =>
        this.answers.record(manager, event, result),
      afterRecorded: (event: StoredEventEntity) => this.answers.sendSoon(event.id),
    });
  }

  declarations(): RobotDeclaration[] {
    return [...this.robots.values()].map((robot) => robot.declaration);
  }

  has(code: string): boolean {
    return this.robots.has(code);
  }
}
