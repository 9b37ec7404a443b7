import * as z from 'zod';
import { AccountIdSchema } from './ids';

/**
 * EventBridge's Scheduled Event, what a schedule rule hands a function. A scheduled run takes no
 * parameters, so anything in `detail` is refused rather than ignored. Envelope fields are typed
 * when present; an operator (or a test) may pass just `source`, `detail-type` and `detail`. Other
 * fields EventBridge may add (e.g. `replay-name`) are ignored.
 * @example { "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/Fleetwarden-NodeDriftSchedule"], "detail": {} }
 */
export const ScheduledEventSchema = z.object({
  version: z.string().optional(),
  id: z.string().min(1).optional(),
  'detail-type': z.literal('Scheduled Event'),
  source: z.literal('aws.events'),
  account: AccountIdSchema.optional(),
  time: z.iso.datetime({ offset: true }).optional(),
  region: z.string().min(1).optional(),
  resources: z.array(z.string()).optional(),
  detail: z.strictObject({}),
});
export type ScheduledEvent = z.infer<typeof ScheduledEventSchema>;

/** A Scheduled Event whose id a run records (its ledger entries are keyed by it), as EventBridge always sends it. */
export const IdentifiedScheduledEventSchema = ScheduledEventSchema.required({ id: true, time: true });
