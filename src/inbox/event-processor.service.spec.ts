import { Injectable } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { AppLogger, createPinoLogger } from '../logging/app-logger';
import {
  CLAIM_MARGIN_SECONDS,
  claimSecondsFor,
  HANDLER_TIMEOUT_MS,
  MIN_CLAIM_SECONDS,
} from './event-processor.service';
import { HandlerRegistry } from './handler-registry.service';
import { OnBitrix24Event } from './on-bitrix24-event.decorator';

const HANDLER_TIMEOUT_SECONDS = HANDLER_TIMEOUT_MS / 1000;

/** Six slow handlers of one event, run one after another: the case the old fixed claim missed. */
@Injectable()
class SixDealHandlers {
  @OnBitrix24Event('ONCRMDEALUPDATE') first(): void {}
  @OnBitrix24Event('ONCRMDEALUPDATE') second(): void {}
  @OnBitrix24Event('ONCRMDEALUPDATE') third(): void {}
  @OnBitrix24Event('ONCRMDEALUPDATE', 'ONCRMLEADADD') fourth(): void {}
  @OnBitrix24Event('ONCRMDEALUPDATE') fifth(): void {}
  @OnBitrix24Event('ONCRMDEALUPDATE') sixth(): void {}
}

describe('the claim on an event outlives a live run of its handlers', () => {
  it('covers every handler running into its timeout, one after another, plus a margin', () => {
    for (let handlers = 0; handlers <= 20; handlers += 1) {
      expect(claimSecondsFor(handlers)).toBeGreaterThanOrEqual(
        handlers * HANDLER_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS,
      );
    }
  });

  it('grows past the former fixed 300 s with six 60 s handlers', () => {
    expect(claimSecondsFor(6)).toBeGreaterThanOrEqual(6 * 60 + CLAIM_MARGIN_SECONDS);
    expect(claimSecondsFor(6)).toBeGreaterThan(300);
  });

  it('keeps the 300 s floor for events with few handlers (a dead worker is not noticed sooner)', () => {
    expect(claimSecondsFor(0)).toBe(MIN_CLAIM_SECONDS);
    expect(claimSecondsFor(1)).toBe(MIN_CLAIM_SECONDS);
    expect(claimSecondsFor(4)).toBe(MIN_CLAIM_SECONDS);
  });

  it('is sized by the event with the most registered handlers', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule],
      providers: [
        HandlerRegistry,
        SixDealHandlers,
        { provide: AppLogger, useValue: new AppLogger(createPinoLogger('silent')) },
      ],
    }).compile();
    await moduleRef.init();
    const registry = moduleRef.get(HandlerRegistry);

    expect(registry.handlersFor('ONCRMDEALUPDATE')).toHaveLength(6);
    expect(registry.handlersFor('ONCRMLEADADD')).toHaveLength(1);
    expect(registry.mostHandlersOfOneEvent()).toBe(6);
    expect(claimSecondsFor(registry.mostHandlersOfOneEvent())).toBeGreaterThanOrEqual(
      6 * HANDLER_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS,
    );
    await moduleRef.close();
  });
});
