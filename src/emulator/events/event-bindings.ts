/** A row of the portal's event handler table (`b_rest_event`) for the emulated app. */
export interface EventBinding {
  /** Sent as `event_handler_id`. */
  readonly id: number;
  readonly event: string;
  /** The handler URL; '' for offline bindings. */
  readonly handler: string;
  /** auth_type: whose auth the handler receives; 0 means the user who caused the event. */
  readonly userId: number;
  readonly connectorId: string;
  readonly offline: boolean;
  readonly options: { readonly minTimeout?: number };
  /** When ONOFFLINEEVENT last went to this handler, for the minTimeout throttle. */
  lastNotifiedAtMs?: number;
}

export type NewEventBinding = Omit<EventBinding, 'id' | 'lastNotifiedAtMs'>;

/** The app's handlers on one portal, unique on (event, handler, user, connector) as in Bitrix. */
export class EventBindings {
  private lastId = 0;
  private bindings: EventBinding[] = [];

  /** Returns undefined when an identical binding exists ("Handler already binded"). */
  add(binding: NewEventBinding): EventBinding | undefined {
    const duplicate = this.bindings.some(
      (existing) =>
        existing.event === binding.event &&
        existing.handler === binding.handler &&
        existing.userId === binding.userId &&
        existing.connectorId === binding.connectorId,
    );
    if (duplicate) return undefined;
    const added: EventBinding = { ...binding, id: ++this.lastId };
    this.bindings.push(added);
    return added;
  }

  remove(matches: (binding: EventBinding) => boolean): number {
    const before = this.bindings.length;
    this.bindings = this.bindings.filter((binding) => !matches(binding));
    return before - this.bindings.length;
  }

  removeAll(): void {
    this.bindings = [];
  }

  all(): readonly EventBinding[] {
    return this.bindings;
  }

  forEvent(event: string, offline: boolean): EventBinding[] {
    return this.bindings.filter(
      (binding) => binding.event === event && binding.offline === offline,
    );
  }
}
