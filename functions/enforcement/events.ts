import * as z from 'zod';
import { type HandledEvent, envelope, handledEvent, parseWithRegistry } from '../shared/aws-events';
import { MalformedEventError } from '../shared/errors';
import { InstanceIdSchema } from '../shared/ids';
import { describeIssues, sqsText } from '../shared/validation';

/**
 * The two AWS events the enforcer reacts to, each a reason to check an instance now rather than
 * at the next sweep: an instance entered `running`, or a RunInstances call (via CloudTrail) names
 * who launched which instances. The forwarding rules of the member stack and the home rules are
 * derived from this registry.
 */

/** @example { ..., "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": { "instance-id": "i-0abc...", "state": "running" } } */
export const InstanceRunningSchema = envelope('aws.ec2', 'EC2 Instance State-change Notification', z.object({ 'instance-id': InstanceIdSchema, state: z.literal('running') }));

const UserIdentitySchema = z.object({
  type: z.string().min(1).max(64),
  arn: z.string().min(1).max(2048).optional(),
  principalId: z.string().min(1).max(256).optional(),
  userName: z.string().max(256).optional(),
  /** The service that made the call on the principal's behalf, e.g. autoscaling.amazonaws.com. */
  invokedBy: z.string().max(256).optional(),
  sessionContext: z.object({ sessionIssuer: z.object({ arn: z.string().max(2048).optional() }).optional() }).optional(),
});

/**
 * A successful RunInstances call, as CloudTrail delivers it to EventBridge.
 * @example { ..., "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": { "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
 *   "userIdentity": { "type": "IAMUser", "arn": "arn:aws:iam::333333333333:user/alice" },
 *   "responseElements": { "instancesSet": { "items": [{ "instanceId": "i-0abc..." }] } } } }
 */
export const RunInstancesCallSchema = envelope(
  'aws.ec2',
  'AWS API Call via CloudTrail',
  z.object({
    eventSource: z.literal('ec2.amazonaws.com'),
    eventName: z.literal('RunInstances'),
    userIdentity: UserIdentitySchema,
    errorCode: z.undefined({ error: 'a failed RunInstances call launched nothing' }).optional(),
    responseElements: z.object({ instancesSet: z.object({ items: z.array(z.object({ instanceId: InstanceIdSchema })).min(1).max(1000) }) }),
  }),
);

/** Every enforcer event normalized: which instances to check, and who launched them when known. */
export interface EnforcementEvent {
  eventId: string;
  kind: 'running' | 'launched';
  account: string;
  region: string;
  time: Date;
  instanceIds: string[];
  /** Who called RunInstances (a principal ARN, "via" the service that called for it). */
  creator?: string;
}

/** The principal a CloudTrail record names, as a flag shows it. */
export function creatorOf(identity: z.infer<typeof UserIdentitySchema>): string {
  // The first field that names someone (an empty one names no one).
  const who = identity.arn || identity.sessionContext?.sessionIssuer?.arn || identity.principalId || identity.userName || identity.type;
  return identity.invokedBy ? `${who} via ${identity.invokedBy}` : who;
}

interface Parser extends HandledEvent {
  parse(raw: unknown): EnforcementEvent;
}

function parser<T extends z.ZodType>(schema: T, filter: Record<string, unknown>, normalize: (e: z.infer<T>) => Pick<EnforcementEvent, 'kind' | 'instanceIds' | 'creator'>): Parser {
  const handled = handledEvent(schema, filter);
  return {
    ...handled,
    parse(raw) {
      const result = schema.safeParse(raw);
      if (!result.success) throw new MalformedEventError(`malformed "${handled.detailType}" event: ${describeIssues(result.error)}`);
      const e = result.data as { id: string; account: string; region: string; time: string };
      return { eventId: e.id, account: e.account, region: e.region, time: new Date(e.time), ...normalize(result.data) };
    },
  };
}

const PARSERS: readonly Parser[] = [
  parser(InstanceRunningSchema, { detail: { state: ['running'] } }, (e) => ({ kind: 'running', instanceIds: [e.detail['instance-id']] })),
  parser(RunInstancesCallSchema, { detail: { eventSource: ['ec2.amazonaws.com'], eventName: ['RunInstances'], errorCode: [{ exists: false }] } }, (e) => ({
    kind: 'launched',
    instanceIds: [...new Set(e.detail.responseElements.instancesSet.items.map((i) => i.instanceId))],
    creator: sqsText(creatorOf(e.detail.userIdentity), 512),
  })),
];

/** The (source, detail-type, pattern) triples the enforcer understands; the CDK rules import this. */
export const ENFORCEMENT_EVENTS: readonly HandledEvent[] = PARSERS.map(({ source, detailType, pattern }) => ({ source, detailType, pattern }));

/** The parse step of the enforcer's SQS records: an EnforcementEvent, or UnknownEventError / MalformedEventError with the reason. */
export const parseEnforcementEvent = (raw: unknown): EnforcementEvent => parseWithRegistry(raw, PARSERS);
