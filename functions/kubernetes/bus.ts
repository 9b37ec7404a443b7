import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { awsClient } from '../shared/aws';
import { RetryableError } from '../shared/errors';
import { KUBERNETES_EVENT_SOURCE, type NodeEvent, type NodeEventPublisher } from './events';

/** Publishes node events on Fleetwarden's bus (source `fleetwarden.kubernetes`). */
export class EventBridgeNodeEvents implements NodeEventPublisher {
  constructor(private readonly busName: string) {}

  async publish(events: NodeEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += 10) {
      const out = await awsClient(EventBridgeClient).send(
        new PutEventsCommand({
          Entries: events.slice(i, i + 10).map((e) => ({ EventBusName: this.busName, Source: KUBERNETES_EVENT_SOURCE, DetailType: e.detailType, Detail: JSON.stringify(e.detail) })),
        }),
      );
      if (out.FailedEntryCount) throw new RetryableError(`EventBridge refused ${out.FailedEntryCount} event(s): ${JSON.stringify(out.Entries)}`);
    }
  }
}
