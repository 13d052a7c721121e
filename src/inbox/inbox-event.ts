import type { Bitrix24PortalClient } from '../bitrix24/portal-client';
import type { EventSource } from './stored-event.entity';

/** What a handler receives: one stored Bitrix24 event, as Bitrix24 sent it. */
export interface InboxEvent {
  /** Our stored event id (stable across retries and replays). */
  readonly id: string;
  readonly memberId: string;
  readonly source: EventSource;
  readonly eventName: string;
  /** The event's `data` (offline: EVENT_DATA), untouched. */
  readonly data: unknown;
  /** Offline events: EVENT_ADDITIONAL (`{user_id}`); null for online events. */
  readonly additional: unknown;
  readonly queueId: string | null;
  readonly messageId: string | null;
  readonly bitrixTimestamp: Date | null;
  readonly receivedAt: Date;
  /** 1 for the first run; retries and replays count on. */
  readonly attempt: number;
  readonly trigger: 'automatic' | 'replay';
  /**
   * Aborts when the run must stop: the handler timeout (INBOX_HANDLER_TIMEOUT_SECONDS) passed, or
   * another run took the claim over. Pass it to fetch and other cancellable calls.
   */
  readonly signal: AbortSignal;
  /**
   * The event's portal, to call Bitrix24 with: its shared rate-limit bucket, its stored token
   * chain, and `license()` to ask whether the app is paid for there.
   */
  readonly portal: Bitrix24PortalClient;
}

/** A handler method registered with @OnBitrix24Event. */
export type InboxEventHandler = (event: InboxEvent) => unknown;
