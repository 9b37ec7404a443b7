import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { awsClient } from './aws';
import { RetryableError } from './errors';

/** The source of each capability's events on Fleetwarden's bus; rules match on these. */
export const EVENT_SOURCES = {
  interruption: 'fleetwarden.interruption',
  kubernetes: 'fleetwarden.kubernetes',
  swap: 'fleetwarden.swap',
  drift: 'fleetwarden.drift',
  enforcement: 'fleetwarden.enforcement',
  waste: 'fleetwarden.waste',
  workloads: 'fleetwarden.workloads',
} as const;

/** One of Fleetwarden's own domain events, as published on its bus (schemas in the README). */
export interface DomainEvent<T extends string = string> {
  detailType: T;
  detail: Record<string, unknown>;
}

/** Where a use case announces what it did. At least once: consumers deduplicate on eventId + detail-type. */
export interface EventPublisher<E extends DomainEvent = DomainEvent> {
  publish(events: E[]): Promise<void>;
}

/** PutEvents takes at most this many entries per call. */
const PUT_EVENTS_MAX_ENTRIES = 10;

/** Publishes domain events on Fleetwarden's bus under one source (`fleetwarden.<capability>`). */
export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly busName: string,
    private readonly source: string,
  ) {}

  async publish(events: DomainEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += PUT_EVENTS_MAX_ENTRIES) {
      const out = await awsClient(EventBridgeClient).send(
        new PutEventsCommand({
          Entries: events
            .slice(i, i + PUT_EVENTS_MAX_ENTRIES)
            .map((e) => ({ EventBusName: this.busName, Source: this.source, DetailType: e.detailType, Detail: JSON.stringify(e.detail) })),
        }),
      );
      // A partial failure is not an exception from the SDK: without this check events would be lost.
      if (out.FailedEntryCount) throw new RetryableError(`EventBridge refused ${out.FailedEntryCount} event(s): ${JSON.stringify(out.Entries)}`);
    }
  }
}
