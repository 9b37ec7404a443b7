import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClient } from '../functions/shared/aws';
import type { LocalStack } from './provision';

export interface BusEvent {
  id: string;
  source: string;
  'detail-type': string;
  detail: Record<string, any>;
}

async function queue(name: string) {
  const sqs = awsClient(SQSClient);
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  const drain = async <T>() => {
    const seen: T[] = [];
    for (;;) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      if (!out.Messages?.length) return seen;
      seen.push(...out.Messages.map((m) => JSON.parse(m.Body!) as T));
    }
  };
  return { arn: Attributes!.QueueArn!, drain };
}

/** Subscribes a fresh queue to Fleetwarden's bus; the returned function reads what arrived since. */
export async function listenToBus(stack: LocalStack, sources: string[], name = 'bus'): Promise<() => Promise<BusEvent[]>> {
  const listener = await queue(`${stack.prefix}-${name}-listener`);
  const events = awsClient(EventBridgeClient);
  const bus = stack.ref('StateStoreBus');
  const rule = `${stack.prefix}-${name}-listener`;
  await events.send(new PutRuleCommand({ Name: rule, EventBusName: bus, EventPattern: JSON.stringify({ source: sources }) }));
  await events.send(new PutTargetsCommand({ Rule: rule, EventBusName: bus, Targets: [{ Id: 'listener', Arn: listener.arn }] }));
  return () => listener.drain<BusEvent>();
}

/** Subscribes a fresh queue to the notification topic. */
export async function listenToTopic(stack: LocalStack, name = 'topic'): Promise<() => Promise<{ Subject?: string; Message: string }[]>> {
  const listener = await queue(`${stack.prefix}-${name}-listener`);
  await awsClient(SNSClient).send(new SubscribeCommand({ TopicArn: stack.ref('StateStoreNotifications'), Protocol: 'sqs', Endpoint: listener.arn }));
  return () => listener.drain();
}
