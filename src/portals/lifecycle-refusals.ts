import { Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry';

/** Counts lifecycle events (ONAPPUPDATE, ONAPPUNINSTALL) that were not acted on, by reason. */
@Injectable()
export class LifecycleRefusals {
  private readonly refusals: Counter<'event' | 'reason'>;

  constructor(metrics: MetricsRegistry) {
    this.refusals = metrics.counter(
      'bitrix24_lifecycle_events_refused_total',
      'Lifecycle events (ONAPPUPDATE, ONAPPUNINSTALL) not acted on because Bitrix24 did not confirm them, by reason',
      ['event', 'reason'],
    );
  }

  count(event: 'ONAPPUPDATE' | 'ONAPPUNINSTALL', reason: string): void {
    this.refusals.inc({ event, reason });
  }
}
