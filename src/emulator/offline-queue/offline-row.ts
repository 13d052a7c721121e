/** One row of the portal's offline event table (`b_rest_event_offline`), for the single emulated app. */
export interface OfflineRow {
  readonly id: number;
  readonly messageId: string;
  readonly eventName: string;
  readonly connectorId: string;
  eventData: unknown;
  /** The user whose action wrote the row; 0 for agents. */
  userId: number;
  /** TIMESTAMP_X: the last write, at the DATETIME column's one-second precision. */
  timestampMs: number;
  /** '' while the row waits in the queue; the batch's id once a `get` with clear=0 reserved it. */
  processId: string;
  error: 0 | 1;
}
