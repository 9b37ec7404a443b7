import * as z from 'zod';
import { InterruptionEventKindSchema, WATCHED_STATES } from '../interruption/events';
import { type DomainEvent, EVENT_SOURCES, type EventPublisher } from '../shared/bus';
import { EnvironmentClassSchema } from '../shared/environments';
import { MalformedEventError } from '../shared/errors';
import { AccountIdSchema, InstanceIdSchema } from '../shared/ids';
import { describeIssues } from '../shared/validation';

/**
 * What the node-drain function consumes and publishes on Fleetwarden's bus. The rule that feeds
 * its queue is built from `nodeDrainPattern`, so the rule and the parser cannot disagree.
 */
export const INSTANCE_INTERRUPTED = 'InstanceInterrupted';

/**
 * `InstanceInterrupted` as the ingest function publishes it (README, events table).
 * @example
 * { "version": "0", "id": "5b1c…", "detail-type": "InstanceInterrupted", "source": "fleetwarden.interruption",
 *   "account": "123456789012", "time": "2026-11-22T10:00:01Z", "region": "us-east-1", "resources": [],
 *   "detail": { "eventId": "3e7f6b8a-…", "kind": "spot-interruption", "instanceId": "i-0abc…", "account": "111111111111",
 *     "region": "us-east-1", "environment": "PROD", "pool": "us-east-1/use1-az6/m5.large", "lifecycle": "spot",
 *     "clusterName": "prod-eks", "deadline": "2026-11-22T10:02:00.000Z" } }
 */
export const InstanceInterruptedDetailSchema = z.object({
  eventId: z.string().min(1),
  kind: InterruptionEventKindSchema,
  instanceId: InstanceIdSchema,
  account: AccountIdSchema,
  region: z.string().min(1),
  environment: EnvironmentClassSchema,
  pool: z.string().optional(),
  lifecycle: z.enum(['spot', 'on-demand']).optional(),
  asgName: z.string().optional(),
  clusterName: z.string().min(1).optional(),
  state: z.enum(['pending', 'running', ...WATCHED_STATES]).optional(),
  deadline: z.iso.datetime({ offset: true }).optional(),
  asg: z.object({ name: z.string(), hook: z.string(), token: z.string() }).optional(),
});
export type InstanceInterruptedDetail = z.infer<typeof InstanceInterruptedDetailSchema>;

export const InstanceInterruptedEventSchema = z.object({
  id: z.string().min(1),
  'detail-type': z.literal(INSTANCE_INTERRUPTED),
  source: z.literal(EVENT_SOURCES.interruption),
  time: z.string().optional(),
  detail: InstanceInterruptedDetailSchema,
});

/** The parse step of the node-drain's SQS records: the event's detail, or MalformedEventError naming every bad field. */
export function parseInstanceInterrupted(raw: unknown): InstanceInterruptedDetail {
  const parsed = InstanceInterruptedEventSchema.safeParse(raw);
  if (!parsed.success) throw new MalformedEventError(`malformed InstanceInterrupted event: ${describeIssues(parsed.error)}`);
  return parsed.data.detail;
}

/** The pattern of the rule on Fleetwarden's bus: interruptions of instances in the configured clusters. */
export function nodeDrainPattern(clusterNames: string[]) {
  return { source: [EVENT_SOURCES.interruption], 'detail-type': [INSTANCE_INTERRUPTED], detail: { clusterName: [...clusterNames] } };
}

/** Detail-types this capability publishes (source `fleetwarden.kubernetes`). */
export const NODE_EVENT_TYPES = ['NodeTainted', 'NodeCordoned', 'NodeDrained', 'NodeDrainFailed'] as const;
export type NodeEventType = (typeof NODE_EVENT_TYPES)[number];

export type NodeEvent = DomainEvent<NodeEventType>;
export type NodeEventPublisher = EventPublisher<NodeEvent>;
