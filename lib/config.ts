import { z } from 'zod';
import { type EnvironmentClass, EnvironmentClassSchema } from '../functions/shared/environments';
import { ClusterConfigSchema } from '../functions/kubernetes/cluster-config';
import { DEFAULT_PRICES, type PriceTable, PriceTableSchema } from '../functions/waste/policy';
import { BudgetSchema, MaintenanceWindowSchema, SwapGroupSchema } from '../functions/batch/model';
import { WorkloadDriftPolicySchema } from '../functions/workloads/policy';
import { NOTIFIABLE_EVENT_TYPES, notifiableEvent } from './notifiable-events';

/**
 * Fleetwarden's deployment config, read from the `fleetwarden` key of `cdk.json` context
 * (or `cdk synth -c fleetwarden='{...}'`). Every default below is the product's reference
 * number: a 15-day PROD quarantine, 24 h enforcement grace, 7 days for unattached EBS, 30 days
 * for unused snapshots, $3.60 a month for an idle Elastic IP, a 1-minute drift cycle.
 * Unknown keys are rejected so that a typo fails `cdk synth` instead of being ignored.
 *
 * @example
 * {
 *   "stage": "prod",
 *   "homeRegion": "us-east-1",
 *   "regions": ["us-east-1", "eu-west-1"],
 *   "accounts": [{ "id": "111111111111", "name": "payments-prod", "environment": "PROD" }],
 *   "policies": { "quarantine": { "days": 15 } }
 * }
 */
export { EnvironmentClassSchema, type EnvironmentClass };

const ENVIRONMENTS = EnvironmentClassSchema.options;

/** A record with one entry per environment class, each defaulted on its own. */
const perEnvironment = <T extends z.ZodType>(value: T, defaults: Record<EnvironmentClass, z.input<T>>) =>
  z
    .strictObject({
      PROD: value.default(defaults.PROD as never),
      STAGING: value.default(defaults.STAGING as never),
      LAB: value.default(defaults.LAB as never),
    })
    .prefault({});

const REGION = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like us-east-1');
const ACCOUNT_ID = z.string().regex(/^\d{12}$/, 'an AWS account id is 12 digits');

export const AccountSchema = z.strictObject({
  id: ACCOUNT_ID,
  name: z.string().min(1),
  environment: EnvironmentClassSchema,
  /** The regions Fleetwarden watches in this account (default: all of `regions`). */
  regions: z.array(REGION).min(1).optional(),
});

/** A tag an instance must carry: with `value`, exactly that value; without, any value. */
export const TagMatchSchema = z.strictObject({
  key: z.string().min(1).max(128),
  value: z.string().max(256).optional(),
});

/** Beyond this many accounts the home bus must accept the organization instead of each account. */
export const MAX_ACCOUNTS_WITHOUT_ORGANIZATION = 100;

/** The price table of `policies.waste.prices.default`, each price defaulted on its own. */
const PriceTableInput = z.strictObject(
  Object.fromEntries(Object.entries(DEFAULT_PRICES).map(([k, usd]) => [k, z.number().min(0).default(usd)])) as { [K in keyof PriceTable]: z.ZodDefault<z.ZodNumber> },
);
/** Which kinds cleanup removes in one environment class (each off unless turned on). */
const CleanupKindsInput = z.strictObject({ address: z.boolean().default(false), volume: z.boolean().default(false), snapshot: z.boolean().default(false) });
const NO_CLEANUP = { address: false, volume: false, snapshot: false };

/** A Secrets Manager secret, by name or ARN, created outside the stack (the template only refers to it). */
const SECRET_NAME = z
  .string()
  .regex(/^([\w/+=.@-]{1,512}|arn:aws[\w-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+)$/, 'a Secrets Manager secret name (letters, digits, /_+=.@-) or ARN');

/**
 * One chat or incident-tool webhook: the events it gets (detail-types of Fleetwarden's bus, see
 * lib/notifiable-events.ts), in which message format, and where. EventBridge delivers it itself
 * (a connection, an API destination, one rule per event type), retrying and then parking the
 * event in the notifications dead-letter queue.
 *
 * The endpoint is `url` (https, kept in cdk.json) or `urlSecretName`, a secret whose value is the
 * URL: Slack and Teams webhook URLs are credentials themselves, so keep those in the secret.
 * `secretName` is a secret whose value is sent as the `header` header (e.g. `Bearer …` for an
 * incident tool). Either way the template holds only a `{{resolve:secretsmanager:…}}` reference.
 *
 * @example
 * { "name": "ops-slack", "kind": "slack", "urlSecretName": "fleetwarden/webhooks/ops-slack",
 *   "events": ["PoolQuarantined", "SwapRolledBack", "CircuitBreakerTripped"], "environments": ["PROD"] }
 */
export const WebhookSchema = z.strictObject({
  /** Names the webhook's resources; unique among the webhooks. */
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,39}$/, 'a webhook name is a letter, then up to 39 letters, digits and -'),
  /** The message format: Slack `{ "text" }`, a Teams adaptive card, or a JSON envelope with the event. */
  kind: z.enum(['slack', 'teams', 'json']),
  url: z.url({ protocol: /^https$/, hostname: z.regexes.domain, error: 'an https URL (EventBridge API destinations call https endpoints only)' }).optional(),
  urlSecretName: SECRET_NAME.optional(),
  events: z.array(z.enum(NOTIFIABLE_EVENT_TYPES)).min(1),
  /** Only events of these environment classes, for the event types whose detail carries `environment`. */
  environments: z.array(EnvironmentClassSchema).min(1).optional(),
  /** A secret whose value is sent in `header` with every call (the connection's API key). */
  secretName: SECRET_NAME.optional(),
  header: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,512}$/, 'an HTTP header name').default('Authorization'),
  /** Retries of a failed call (5xx, 429, 401, 407, 409, or no answer) before the event goes to the DLQ. */
  retryAttempts: z.number().int().min(0).max(185).default(8),
  /** An event older than this is not retried any more (a stale page is worse than none). */
  maxEventAgeMinutes: z.number().int().min(1).max(24 * 60).default(60),
});
export type Webhook = z.infer<typeof WebhookSchema>;

export const EnforcementActionSchema = z.enum(['none', 'stop', 'terminate']);

export const PoliciesSchema = z
  .strictObject({
    quarantine: z
      .strictObject({
        /** How long an interruption in a quarantining environment closes the pool, for every account. */
        days: z.number().int().min(1).max(365).default(15),
        /** Which environment classes' interruptions quarantine a pool. */
        byEnvironment: perEnvironment(z.boolean(), { PROD: true, STAGING: false, LAB: false }),
        /** Short quarantine after an InsufficientInstanceCapacity launch error. */
        insufficientCapacityMinutes: z.number().int().min(1).max(24 * 60).default(10),
        /** Half-life of the decaying per-pool risk score. */
        riskHalfLifeHours: z.number().positive().max(24 * 365).default(72),
      })
      .prefault({}),
    enforcement: z
      .strictObject({
        graceHours: z.number().min(0).max(24 * 30).default(24),
        actions: perEnvironment(EnforcementActionSchema, { PROD: 'none', STAGING: 'none', LAB: 'none' }),
        protectedTag: z.string().min(1).default('fleetwarden:protected'),
        /** An instance is authorized when any one of these holds. */
        authorizedWhen: z
          .strictObject({
            tags: z.array(TagMatchSchema).default([{ key: 'ManagedBy', value: 'fleetwarden' }, { key: 'eks:cluster-name' }]),
            /** Launched by an Auto Scaling group (its `aws:autoscaling:groupName` tag). */
            autoScalingGroup: z.boolean().default(true),
          })
          .prefault({}),
        /** Allow-lists: an instance matching any of these is authorized too. */
        allow: z
          .strictObject({
            tags: z.array(TagMatchSchema).default([]),
            amis: z.array(z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'an AMI id looks like ami-0123456789abcdef0')).default([]),
            accounts: z.array(ACCOUNT_ID).default([]),
          })
          .prefault({}),
        /** The backstop sweep over every account and region. */
        sweepSchedule: z.string().min(1).default('rate(1 hour)'),
        circuitBreaker: z
          .strictObject({
            maxActionsPerRun: z.number().int().min(0).default(10),
            maxPercentOfFleet: z.number().min(0).max(100).default(5),
          })
          .prefault({}),
      })
      .prefault({}),
    waste: z
      .strictObject({
        /** The daily scan of every account and region. */
        scanSchedule: z.string().min(1).default('rate(1 day)'),
        /** A volume `available` longer than this is waste (0: as soon as it is seen). */
        unattachedEbsDays: z.number().min(0).default(7),
        /** A snapshot nothing refers to, older than this, is waste. */
        unusedSnapshotDays: z.number().min(0).default(30),
        /** Monthly list prices in USD: `default` (us-east-1 list prices) and per-region overrides. */
        prices: z
          .strictObject({
            default: PriceTableInput.prefault({}),
            regions: z.record(REGION, PriceTableSchema.partial()).default({}),
          })
          .prefault({}),
        /** Opt-in removal: mark (tag and notify), wait the grace, re-check, act. `dryRun` wins. */
        cleanup: z
          .strictObject({
            byEnvironment: perEnvironment(CleanupKindsInput, { PROD: NO_CLEANUP, STAGING: NO_CLEANUP, LAB: NO_CLEANUP }),
            graceHours: z.number().min(0).max(24 * 90).default(7 * 24),
            circuitBreaker: z
              .strictObject({
                maxActionsPerRun: z.number().int().min(0).default(20),
                maxPercentOfFleet: z.number().min(0).max(100).default(10),
              })
              .prefault({}),
          })
          .prefault({}),
      })
      .prefault({}),
    drift: z
      .strictObject({
        cycleMinutes: z.number().int().min(1).max(60).default(1),
        /** Kubernetes workloads against their desired state in git: rules (alert, rollback, ignore), protected and watched namespaces, rollout timeout. */
        workloads: WorkloadDriftPolicySchema.prefault({}),
      })
      .prefault({}),
  })
  .prefault({});

/**
 * The Spot interruption experiment (AWS FIS) of the member stack: off unless enabled, and then
 * only in the LAB accounts of `accounts`, where it interrupts tagged running Spot instances.
 *
 * @example
 * { "spotInterruptions": { "enabled": true, "targetTag": { "key": "fleetwarden:chaos", "value": "spot-interruption" },
 *   "durationBeforeInterruption": "PT2M", "select": { "percent": 50 }, "stopAlarmNames": ["checkout-slo"] } }
 */
export const SpotInterruptionChaosSchema = z.strictObject({
  /** Synthesize the AWS FIS experiment template (in the member stack of LAB accounts only). */
  enabled: z.boolean().default(false),
  /** Only running Spot instances with exactly this tag are interrupted. */
  targetTag: z
    .strictObject({
      key: z.string().min(1).max(128).default('fleetwarden:chaos'),
      value: z.string().min(1).max(256).default('spot-interruption'),
    })
    .prefault({}),
  /** From the rebalance recommendation to the interruption; the interruption warning always comes 2 minutes before. */
  durationBeforeInterruption: z
    .string()
    .regex(/^PT([2-9]|1[0-5])M$/, 'an ISO 8601 duration in whole minutes from PT2M to PT15M')
    .default('PT2M'),
  /** How many of the tagged running Spot instances one experiment interrupts. */
  select: z
    .union([z.strictObject({ count: z.number().int().min(1).max(1000) }), z.strictObject({ percent: z.number().int().min(1).max(100) })])
    .default({ percent: 50 }),
  /** Alarms (in the LAB account and region) that stop the experiment too, e.g. your service's SLO alarms. */
  stopAlarmNames: z.array(z.string().min(1).max(255)).max(4).default([]),
});

export const ChaosSchema = z
  .strictObject({
    spotInterruptions: SpotInterruptionChaosSchema.prefault({}),
  })
  .prefault({});

export const FleetwardenConfigSchema = z
  .strictObject({
    /** `prod` turns on deletion protection and retains data on stack deletion. */
    stage: z.enum(['dev', 'prod']).default('dev'),
    /** Audit-only: decide and record, never act. Destructive actions are opt-in. */
    dryRun: z.boolean().default(true),
    homeRegion: REGION,
    regions: z.array(REGION).min(1),
    accounts: z.array(AccountSchema).min(1),
    /** Role Fleetwarden assumes in each member account (deployed there by your org's baseline). */
    memberRoleName: z.string().regex(/^[\w+=,.@-]{1,64}$/, 'not an IAM role name').default('fleetwarden-member'),
    organizations: z
      .strictObject({
        /** The organization's id: member roles then also require it of whoever assumes them, and the bus accepts the whole organization. */
        id: z.string().regex(/^o-[a-z0-9]{10,32}$/, 'an organization id looks like o-a1b2c3d4e5').optional(),
        /** Read each account's environment class from this Organizations account tag. */
        environmentTag: z.string().min(1).optional(),
      })
      .prefault({}),
    notifications: z
      .strictObject({
        emails: z.array(z.email()).default([]),
        webhooks: z.array(WebhookSchema).max(20).default([]),
      })
      .prefault({}),
    policies: PoliciesSchema,
    ledger: z
      .strictObject({
        /** Object Lock retention of the ledger archive and digests. */
        archiveRetentionDays: z.number().int().min(1).default(365),
        digestSchedule: z.string().min(1).default('rate(1 hour)'),
      })
      .prefault({}),
    /** EKS clusters whose nodes Fleetwarden taints, cordons and drains on interruption. */
    kubernetes: z
      .strictObject({
        clusters: z.array(ClusterConfigSchema).default([]),
        /** What a rebalance recommendation does: ignore, taint only, or cordon and drain. */
        rebalance: z.enum(['ignore', 'taint', 'drain']).default('taint'),
        /** Hard cap on one drain; below the 2-minute Spot notice, so the result is recorded in time. */
        drainTimeoutSeconds: z.number().int().min(5).max(110, 'must stay below the 2-minute Spot notice (at most 110)').default(90),
        /** Pods annotated `<this>: "true"` are never evicted (Karpenter's karpenter.sh/do-not-disrupt is honoured too). */
        doNotDisruptAnnotation: z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9._-]+$/, 'an annotation key').default('fleetwarden.io/do-not-disrupt'),
        /** Workloads declared in git: a folder per cluster of plain Kubernetes YAML, validated at synth and published by deploy. */
        desiredState: z
          .strictObject({
            /** The folder holding `<cluster>/…yaml`, relative to the project (where cdk.json is) or absolute. */
            path: z.string().min(1).default('manifests/clusters'),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Auto Scaling groups Fleetwarden keeps on Spot and free of node drift: batch swaps
     * on a schedule, within a disruption budget and a maintenance window.
     */
    swaps: z
      .strictObject({
        groups: z.array(SwapGroupSchema).default([]),
        /** How many swaps a batch runs at once, across its groups (a group itself swaps one node at a time). */
        budget: BudgetSchema.default({ count: 1 }),
        /** Swaps a batch may see rolled back before it halts. */
        maxFailedSwaps: z.number().int().min(0).max(100).default(1),
        /** After each wave, every group must be back at its desired capacity, all InService (and its nodes Ready). */
        healthGate: z
          .strictObject({
            /** Wait this long after a wave before checking. */
            settleSeconds: z.number().int().min(0).max(3600).default(60),
            /** Checks (one a minute) before the gate fails and the batch halts. */
            checks: z.number().int().min(1).max(60).default(10),
            /** CloudWatch alarms (your service's SLOs) that must not be in ALARM for the batch to go on. */
            alarmNames: z.array(z.string().min(1).max(255)).default([]),
          })
          .prefault({}),
        /** Named windows that groups refer to; non-urgent swaps of a group run only inside its window. */
        maintenanceWindows: z.record(z.string().regex(/^[\w-]{1,64}$/, 'a window name is letters, digits, - and _'), MaintenanceWindowSchema).default({}),
      })
      .prefault({}),
    /** Fault injection for LAB accounts: see README, Chaos. */
    chaos: ChaosSchema,
  })
  .superRefine((config, ctx) => {
    const groupNames = new Map<string, number>();
    config.swaps.groups.forEach((group, index) => {
      const first = groupNames.get(group.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['swaps', 'groups', index, 'name'], message: `group ${group.name} is already listed at swaps.groups.${first}` });
      groupNames.set(group.name, index);
      if (group.maintenanceWindow && !(group.maintenanceWindow in config.swaps.maintenanceWindows)) {
        ctx.addIssue({ code: 'custom', path: ['swaps', 'groups', index, 'maintenanceWindow'], message: `no window ${group.maintenanceWindow} in swaps.maintenanceWindows` });
      }
      if (group.cluster && !config.kubernetes.clusters.some((c) => c.name === group.cluster)) {
        ctx.addIssue({ code: 'custom', path: ['swaps', 'groups', index, 'cluster'], message: `no cluster ${group.cluster} in kubernetes.clusters` });
      }
    });
    const seen = new Map<string, number>();
    config.accounts.forEach((account, index) => {
      const first = seen.get(account.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', index, 'id'],
          message: `account ${account.id} is already listed at accounts.${first}`,
        });
      }
      seen.set(account.id, index);
      account.regions?.forEach((region, r) => {
        if (!config.regions.includes(region)) {
          ctx.addIssue({ code: 'custom', path: ['accounts', index, 'regions', r], message: `region ${region} is not one of regions (${config.regions.join(', ')})` });
        }
      });
    });
    config.policies.enforcement.allow.accounts.forEach((account, index) => {
      if (!seen.has(account) && !config.organizations.environmentTag) {
        ctx.addIssue({ code: 'custom', path: ['policies', 'enforcement', 'allow', 'accounts', index], message: `account ${account} is not one of accounts` });
      }
    });
    const webhookNames = new Map<string, number>();
    config.notifications.webhooks.forEach((webhook, index) => {
      const path = ['notifications', 'webhooks', index];
      const first = webhookNames.get(webhook.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: [...path, 'name'], message: `webhook ${webhook.name} is already listed at notifications.webhooks[${first}]` });
      webhookNames.set(webhook.name, index);
      if (!webhook.url === !webhook.urlSecretName) ctx.addIssue({ code: 'custom', path: [...path, 'url'], message: 'set exactly one of url and urlSecretName' });
      webhook.events.forEach((event, e) => {
        if (webhook.events.indexOf(event) !== e) ctx.addIssue({ code: 'custom', path: [...path, 'events', e], message: `${event} is listed twice` });
      });
      if (webhook.environments && !webhook.events.some((event) => notifiableEvent(event).environment)) {
        const carrying = NOTIFIABLE_EVENT_TYPES.filter((event) => notifiableEvent(event).environment);
        ctx.addIssue({ code: 'custom', path: [...path, 'environments'], message: `none of the events carries an environment to filter on (only ${carrying.join(', ')} do)` });
      }
    });
    const clusterNames = new Map<string, number>();
    config.kubernetes.clusters.forEach((cluster, index) => {
      const first = clusterNames.get(cluster.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['kubernetes', 'clusters', index, 'name'], message: `cluster ${cluster.name} is already listed at kubernetes.clusters.${first}` });
      }
      clusterNames.set(cluster.name, index);
    });
    if (config.accounts.length > MAX_ACCOUNTS_WITHOUT_ORGANIZATION && !config.organizations.id) {
      ctx.addIssue({
        code: 'custom',
        path: ['accounts'],
        message: `${config.accounts.length} accounts: set organizations.id beyond ${MAX_ACCOUNTS_WITHOUT_ORGANIZATION} (without it the home bus needs one policy statement per account, and a stack holds at most 500 resources)`,
      });
    }
    if (config.chaos.spotInterruptions.enabled && !config.accounts.some((a) => a.environment === 'LAB')) {
      ctx.addIssue({
        code: 'custom',
        path: ['chaos', 'spotInterruptions', 'enabled'],
        message: 'no account in accounts is LAB: the experiment is only ever synthesized for the LAB accounts listed there',
      });
    }
    if (!config.regions.includes(config.homeRegion)) {
      ctx.addIssue({ code: 'custom', path: ['homeRegion'], message: 'homeRegion must be one of regions' });
    }
  });

export type FleetwardenConfig = z.infer<typeof FleetwardenConfigSchema>;
export type FleetwardenConfigInput = z.input<typeof FleetwardenConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Renders a zod path as the dotted key a user would look for in cdk.json. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc ? `${acc}.${String(key)}` : String(key);
  }, '');
}

/**
 * Parses the `fleetwarden` context value. Throws a ConfigError naming the path of every bad key,
 * e.g. `fleetwarden.accounts[0].environment: Invalid option: expected one of "PROD"|"STAGING"|"LAB"`.
 */
export function parseConfig(raw: unknown, contextKey = 'fleetwarden'): FleetwardenConfig {
  const value = typeof raw === 'string' ? parseJsonContext(raw, contextKey) : raw;
  if (value === undefined) {
    throw new ConfigError(`Missing config: set the "${contextKey}" key in cdk.json context (see README, Configuration)`);
  }
  const result = FleetwardenConfigSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const where = formatPath([contextKey, ...issue.path]);
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => `${where}.${k}`).join(', ') : undefined;
      return keys ? `  ${keys}: unknown key` : `  ${where}: ${issue.message}`;
    });
    throw new ConfigError(`Invalid Fleetwarden config:\n${lines.join('\n')}`);
  }
  return result.data;
}

function parseJsonContext(raw: string, contextKey: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (cause) {
    throw new ConfigError(`${contextKey}: not valid JSON (${(cause as Error).message})`);
  }
}

export const ENVIRONMENT_CLASSES = ENVIRONMENTS;
