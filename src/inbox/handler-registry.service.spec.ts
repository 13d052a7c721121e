import { Inject, Injectable, Module, Scope } from '@nestjs/common';
import { DiscoveryModule, REQUEST } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import type { InboxEvent } from './inbox-event';
import { HandlerRegistry } from './handler-registry.service';
import { OnBitrix24Event } from './on-bitrix24-event.decorator';

@Injectable()
class SingletonDealHandler {
  @OnBitrix24Event('ONCRMDEALADD')
  onDeal(_event: InboxEvent): void {}
}

@Injectable({ scope: Scope.REQUEST })
class RequestScopedDealHandler {
  @OnBitrix24Event('ONCRMDEALUPDATE')
  onDeal(_event: InboxEvent): void {}
}

@Injectable({ scope: Scope.TRANSIENT })
class TransientDealHandler {
  @OnBitrix24Event('ONCRMDEALUPDATE')
  onDeal(_event: InboxEvent): void {}
}

/** Default scope, but it depends on the request: Nest makes it per request too. */
@Injectable()
class RequestBoundDealHandler {
  constructor(@Inject(REQUEST) readonly request: unknown) {}

  @OnBitrix24Event('ONCRMDEALUPDATE')
  onDeal(_event: InboxEvent): void {}
}

/** Request-scoped, but no handler on it: none of the registry's business. */
@Injectable({ scope: Scope.REQUEST })
class RequestScopedHelper {
  help(): void {}
}

async function bootWith(...handlers: (new (...args: never[]) => object)[]) {
  @Module({ providers: handlers })
  class VendorHandlersModule {}
  const moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule, VendorHandlersModule],
    providers: [
      HandlerRegistry,
      { provide: AppLogger, useValue: new AppLogger(createPinoLogger('silent')) },
    ],
  }).compile();
  return moduleRef.init();
}

describe('HandlerRegistry', () => {
  it('registers the handlers of singleton providers, whatever else the app provides', async () => {
    const app = await bootWith(SingletonDealHandler, RequestScopedHelper);
    const registry = app.get(HandlerRegistry);
    expect(registry.handlersFor('ONCRMDEALADD').map((handler) => handler.name)).toEqual([
      'SingletonDealHandler.onDeal',
    ]);
    await app.close();
  });

  it.each([
    [
      'request-scoped provider',
      RequestScopedDealHandler,
      /RequestScopedDealHandler is request-scoped/,
    ],
    ['transient provider', TransientDealHandler, /TransientDealHandler is transient/],
    [
      'provider that depends on the request',
      RequestBoundDealHandler,
      /RequestBoundDealHandler is request-scoped through its dependencies/,
    ],
  ])('refuses to start with a handler on a %s, naming it', async (_, handler, scope) => {
    const boot = bootWith(SingletonDealHandler, handler);
    await expect(boot).rejects.toThrow(scope);
    await expect(boot).rejects.toThrow(`${handler.name}.onDeal is an @OnBitrix24Event handler`);
  });
});
