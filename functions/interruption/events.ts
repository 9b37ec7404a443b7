import * as z from 'zod';
import { MalformedEventError } from '../shared/errors';
import { type HandledEvent, envelope, handledEvent, inReason, parseWithRegistry } from '../shared/aws-events';
import { InstanceIdSchema, isInstanceId } from '../shared/ids';
import { describeIssues } from '../shared/validation';

/**
 * One parser per AWS event type, keyed by source and detail-type (as Karpenter's interruption
 * controller does), each normalizing into one InterruptionEvent (as the Node Termination Handler
 * does). The EventBridge patterns of the CDK rules are derived from this registry, so the rules
 * and the handler cannot disagree about which events arrive.
 */

/**
 * @example
 * { "version": "0", "id": "3e7f6b8a-...", "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
 *   "account": "111111111111", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
 *   "resources": ["arn:aws:ec2:us-east-1a:instance/i-0abc..."], "detail": { "instance-id": "i-0abc...", "instance-action": "terminate" } }
 */
export const SpotInterruptionWarningSchema = envelope(
  'aws.ec2',
  'EC2 Spot Instance Interruption Warning',
  z.object({ 'instance-id': InstanceIdSchema, 'instance-action': z.enum(['terminate', 'stop', 'hibernate']) }),
);

/** @example { ..., "detail-type": "EC2 Instance Rebalance Recommendation", "source": "aws.ec2", "detail": { "instance-id": "i-0abc..." } } */
export const RebalanceRecommendationSchema = envelope('aws.ec2', 'EC2 Instance Rebalance Recommendation', z.object({ 'instance-id': InstanceIdSchema }));

export const WATCHED_STATES = ['stopping', 'stopped', 'shutting-down', 'terminated'] as const;

/** @example { ..., "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": { "instance-id": "i-0abc...", "state": "shutting-down" } } */
export const StateChangeSchema = envelope(
  'aws.ec2',
  'EC2 Instance State-change Notification',
  z.object({ 'instance-id': InstanceIdSchema, state: z.enum(['pending', 'running', ...WATCHED_STATES]) }),
);

/**
 * AWS Health scheduled changes for EC2 (retirement, maintenance reboots); `startTime` is an
 * RFC 1123 date. @example { ..., "detail-type": "AWS Health Event", "source": "aws.health",
 * "detail": { "service": "EC2", "eventTypeCategory": "scheduledChange", "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
 *   "startTime": "Sat, 05 Dec 2026 06:00:00 GMT", "affectedEntities": [{ "entityValue": "i-0abc..." }] } }
 */
export const HealthScheduledChangeSchema = envelope(
  'aws.health',
  'AWS Health Event',
  z.object({
    service: z.literal('EC2'),
    eventTypeCategory: z.literal('scheduledChange'),
    eventTypeCode: z.string().min(1),
    eventArn: z.string().min(1),
    startTime: z.string().refine((s) => parseRfc1123Date(s) !== undefined, 'startTime is not an RFC 1123 date such as "Sat, 05 Dec 2026 06:00:00 GMT"'),
    affectedEntities: z.array(z.object({ entityValue: z.string() })).min(1),
  }),
);

/**
 * An RFC 1123 date in GMT as AWS Health writes it ("Sat, 05 Dec 2026 06:00:00 GMT", the weekday
 * optional), or undefined. Not Date.parse alone: for anything but ISO 8601, V8 falls back to a
 * lenient parser that takes "x 1" for 2001-01-01, 31 Feb for 3 Mar and 23:59:60 for 23:59:00;
 * the date must print back as written.
 */
function parseRfc1123Date(text: string): Date | undefined {
  const match = /^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2})( (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT)$/.exec(text);
  if (!match) return undefined;
  const [, weekday, day, rest] = match;
  const date = new Date(text);
  const printed = date.toUTCString(); // "Sat, 05 Dec 2026 06:00:00 GMT", or "Invalid Date"
  return printed === `${weekday ?? printed.slice(0, 3)}, ${day!.padStart(2, '0')}${rest}` ? date : undefined;
}

/** @example { ..., "detail-type": "EC2 Instance-terminate Lifecycle Action", "source": "aws.autoscaling", "detail": { "EC2InstanceId": "i-0abc...", "AutoScalingGroupName": "web", "LifecycleHookName": "drain", "LifecycleActionToken": "630a...", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING" } } */
export const AsgTerminateLifecycleSchema = envelope(
  'aws.autoscaling',
  'EC2 Instance-terminate Lifecycle Action',
  z.object({
    EC2InstanceId: InstanceIdSchema,
    AutoScalingGroupName: z.string().min(1),
    LifecycleHookName: z.string().min(1),
    LifecycleActionToken: z.string().min(1),
    LifecycleTransition: z.literal('autoscaling:EC2_INSTANCE_TERMINATING'),
  }),
);

export const InterruptionEventKindSchema = z.enum(['spot-interruption', 'rebalance-recommendation', 'state-change', 'scheduled-change', 'asg-termination']);
export type InterruptionEventKind = z.infer<typeof InterruptionEventKindSchema>;

/** Every source normalized to one shape. */
export interface InterruptionEvent {
  eventId: string;
  kind: InterruptionEventKind;
  detailType: string;
  account: string;
  region: string;
  time: Date;
  instanceIds: string[];
  /** When the instance goes away: 2 minutes after a Spot warning, the start of a scheduled change. */
  deadline?: Date;
  state?: (typeof WATCHED_STATES)[number] | 'pending' | 'running';
  asg?: { name: string; hook: string; token: string };
}

export const SPOT_NOTICE_MS = 2 * 60_000;

interface Parser extends HandledEvent {
  parse(raw: unknown): InterruptionEvent;
}

function parser<T extends z.ZodType>(schema: T, pattern: Record<string, unknown>, normalize: (e: z.infer<T>) => Omit<InterruptionEvent, 'eventId' | 'detailType' | 'account' | 'region' | 'time'>): Parser {
  const handled = handledEvent(schema, pattern);
  const { detailType } = handled;
  return {
    ...handled,
    parse(raw) {
      const result = schema.safeParse(raw);
      if (!result.success) throw new MalformedEventError(`malformed "${detailType}" event: ${describeIssues(result.error)}`);
      const event = result.data as { id: string; account: string; region: string; time: string; 'detail-type': string };
      return { eventId: event.id, detailType, account: event.account, region: event.region, time: new Date(event.time), ...normalize(result.data) };
    },
  };
}

export const PARSERS: readonly Parser[] = [
  parser(SpotInterruptionWarningSchema, {}, (e) => ({
    kind: 'spot-interruption',
    instanceIds: [e.detail['instance-id']],
    deadline: new Date(Date.parse(e.time) + SPOT_NOTICE_MS),
  })),
  parser(RebalanceRecommendationSchema, {}, (e) => ({ kind: 'rebalance-recommendation', instanceIds: [e.detail['instance-id']] })),
  parser(StateChangeSchema, { detail: { state: [...WATCHED_STATES] } }, (e) => ({
    kind: 'state-change',
    instanceIds: [e.detail['instance-id']],
    state: e.detail.state,
  })),
  parser(HealthScheduledChangeSchema, { detail: { service: ['EC2'], eventTypeCategory: ['scheduledChange'] } }, (e) => {
    const instanceIds = e.detail.affectedEntities.map((a) => a.entityValue).filter(isInstanceId);
    // Not silently dropped: a scheduled change that names no instance goes to the DLQ with this reason.
    if (!instanceIds.length) throw new MalformedEventError(`"AWS Health Event" ${inReason(e.detail.eventTypeCode)} names no EC2 instance among its affected entities`);
    return { kind: 'scheduled-change', instanceIds, deadline: parseRfc1123Date(e.detail.startTime)! };
  }),
  parser(AsgTerminateLifecycleSchema, {}, (e) => ({
    kind: 'asg-termination',
    instanceIds: [e.detail.EC2InstanceId],
    asg: { name: e.detail.AutoScalingGroupName, hook: e.detail.LifecycleHookName, token: e.detail.LifecycleActionToken },
  })),
];

/** The (source, detail-type) pairs the handler understands; the CDK rules import this. */
export const HANDLED_EVENTS = PARSERS.map(({ source, detailType, pattern }) => ({ source, detailType, pattern }));

/** The parse step of the ingest's SQS records: an InterruptionEvent, or UnknownEventError / MalformedEventError with the reason. */
export const parseInterruptionEvent = (raw: unknown): InterruptionEvent => parseWithRegistry(raw, PARSERS);
