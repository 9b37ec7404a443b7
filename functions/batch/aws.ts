import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { awsClient } from '../shared/aws';
import { SwapAws } from '../swap/aws';
import type { BatchPorts } from './steps';

/** DescribeAlarms takes at most this many names per call. */
const ALARM_NAMES_PER_CALL = 100;

/** Reads groups through the swap's own reader and alarms through CloudWatch. */
export class AwsBatchPorts implements BatchPorts {
  private readonly swaps: SwapAws;
  constructor(region: string) {
    // No lock store: the batch reads groups; the swaps it starts take their own locks.
    this.swaps = new SwapAws(region);
  }
  group(name: string) {
    return this.swaps.group(name);
  }
  async alarming(alarmNames: string[]): Promise<string[]> {
    if (alarmNames.length === 0) return [];
    const found: string[] = [];
    for (let i = 0; i < alarmNames.length; i += ALARM_NAMES_PER_CALL) {
      const out = await awsClient(CloudWatchClient).send(new DescribeAlarmsCommand({ AlarmNames: alarmNames.slice(i, i + ALARM_NAMES_PER_CALL), StateValue: 'ALARM' }));
      // Filtered again here: the state filter is a request parameter an endpoint may ignore (moto does).
      found.push(...[...(out.MetricAlarms ?? []), ...(out.CompositeAlarms ?? [])].filter((a) => a.StateValue === 'ALARM').map((a) => a.AlarmName!));
    }
    return found;
  }
}
