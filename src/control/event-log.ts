/**
 * The event timeline shown on the dashboard (`GET /api/v1/events`): backend state changes with
 * their cause, operator actions, configuration reloads, data-plane applies with their duration,
 * and warnings. A bounded ring in memory (no database): the newest `capacity` events.
 */
export type EventKind = 'state' | 'action' | 'reload' | 'apply' | 'warning';

export interface TimelineEvent {
  /** Increases by one per event (the dashboard asks for what is newer than its last one). */
  readonly seq: number;
  /** ISO 8601. */
  readonly at: string;
  readonly kind: EventKind;
  readonly severity: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly service?: string;
  readonly backend?: string;
  /** Apply and reload durations. */
  readonly ms?: number;
}

export class EventLog {
  readonly #capacity: number;
  readonly #events: TimelineEvent[] = [];
  readonly #now: () => Date;
  #seq = 0;

  constructor(capacity = 500, now: () => Date = () => new Date()) {
    this.#capacity = capacity;
    this.#now = now;
  }

  record(e: Omit<TimelineEvent, 'seq' | 'at'>): TimelineEvent {
    const event: TimelineEvent = { seq: ++this.#seq, at: this.#now().toISOString(), ...e };
    this.#events.push(event);
    if (this.#events.length > this.#capacity)
      this.#events.splice(0, this.#events.length - this.#capacity);
    return event;
  }

  /** Events with `seq` above `after`, oldest first. */
  list(after = 0): readonly TimelineEvent[] {
    return this.#events.filter((e) => e.seq > after);
  }
}
