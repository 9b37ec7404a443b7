import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { awsClient } from './aws';

/** Where operators hear about what Fleetwarden found or did (the notification topic). */
export interface Notifier {
  notify(subject: string, message: string): Promise<void>;
}

/** SNS subjects are at most 100 characters of printable ASCII. */
const subjectOf = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);

export class SnsNotifier implements Notifier {
  constructor(private readonly topicArn: string) {}

  async notify(subject: string, message: string): Promise<void> {
    await awsClient(SNSClient).send(new PublishCommand({ TopicArn: this.topicArn, Subject: subjectOf(subject), Message: message }));
  }
}
