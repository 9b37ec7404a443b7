import { describe, expect, it } from 'vitest';
import { EVENT_SOURCES } from '../../functions/shared/bus';
import { type Observation, type WorkloadDrift, driftEvents, planCycle } from '../../functions/workloads/drift';
import { WorkloadDriftPolicySchema } from '../../functions/workloads/policy';
import { MessageInput, messageFor } from '../../lib/constructs/notifications';
import { NOTIFIABLE_EVENTS } from '../../lib/notifiable-events';
import { transformInput, valueAtPath } from '../../local/api-destinations';

const event = {
  id: 'e-1',
  'detail-type': 'CircuitBreakerTripped',
  source: 'fleetwarden.enforcement',
  time: '2026-12-07T10:00:00Z',
  detail: { reason: 'planned 12 > "max" 10\nstop', planned: 12, groups: ['web', 'api'], 'odd-key_1': true },
};
const rule = { ruleArn: 'arn:aws:events:us-east-1:123456789012:rule/fleetwarden/r', ruleName: 'r' };

describe('local input transformer (the EventBridge subset Fleetwarden uses)', () => {
  it('reads dot names with dashes and underscores, array indices, and the whole event', () => {
    expect(valueAtPath(event, '$.detail-type')).toBe('CircuitBreakerTripped');
    expect(valueAtPath(event, '$.detail.odd-key_1')).toBe(true);
    expect(valueAtPath(event, '$.detail.groups[1]')).toBe('api');
    expect(valueAtPath(event, '$')).toBe(event);
    expect(valueAtPath(event, '$.detail.missing.deeper')).toBeUndefined();
  });

  it('refuses wildcards rather than guessing', () => {
    expect(() => valueAtPath(event, '$.detail.groups[*]')).toThrow(/no wildcards/);
  });

  it('JSON-escapes a string inside quotes and inserts other values as JSON', () => {
    const body = transformInput(
      { InputPathsMap: { reason: '$.detail.reason', planned: '$.detail.planned', groups: '$.detail.groups' }, InputTemplate: '{"text":"<reason> (<planned>)","planned":<planned>,"groups":<groups>,"reason":<reason>}' },
      event,
      rule,
    );
    expect(JSON.parse(body)).toEqual({ text: 'planned 12 > "max" 10\nstop (12)', planned: 12, groups: ['web', 'api'], reason: 'planned 12 > "max" 10\nstop' });
  });

  it('fills a missing path with an empty string inside quotes and null outside', () => {
    expect(JSON.parse(transformInput({ InputPathsMap: { x: '$.detail.nope' }, InputTemplate: '{"a":"[<x>]","b":<x>}' }, event, rule))).toEqual({ a: '[]', b: null });
  });

  it('knows the predefined variables, and leaves text that is no variable alone', () => {
    const body = transformInput({ InputTemplate: '{"rule":"<aws.events.rule-name>","event":<aws.events.event.json>,"html":"<b>"}' }, event, rule);
    expect(JSON.parse(body)).toEqual({ rule: 'r', event, html: '<b>' });
  });
});

describe('workload drift webhook messages (each summary filled from the detail the drift events really carry)', () => {
  // Arrange: a namespaced drift that rolls back after its grace and fails, and a cluster-scoped one (namespace null), opened then resolved.
  const policy = WorkloadDriftPolicySchema.parse({ rules: [{ match: { namespaces: ['web'] }, action: 'rollback', graceMinutes: 5 }] });
  const observations: Observation[] = [
    { identity: 'apps/Deployment web/storefront', ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'web', name: 'storefront' }, type: 'image', diff: ['spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.28.0'], labels: {} },
    { identity: 'rbac.authorization.k8s.io/ClusterRole reader', ref: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', namespace: null, name: 'reader' }, type: 'config', diff: ['rules[0].verbs: get -> *'], labels: {} },
  ];
  const opened = planCycle({ cluster: 'prod-eks', observations, open: [], commit: 'c0ffee', policy, dryRun: false, now: new Date('2026-12-07T10:00:00.000Z') });
  const [storefront, reader] = opened.transitions.map((t) => t.after) as [WorkloadDrift, WorkloadDrift];
  const rolling: WorkloadDrift = { ...storefront, state: 'rolling-back', execution: 'Deployment-storefront-0123456789abcdef', version: 2 };
  const failedDrift: WorkloadDrift = { ...rolling, state: 'rollback-failed', outcome: 'not-settled: generation 3/3, 1 updated, 0 available of 2', version: 3 };
  const resolved = planCycle({ cluster: 'prod-eks', observations: [], open: [reader], commit: 'c0ffee', policy, dryRun: false, now: new Date('2026-12-07T10:10:00.000Z') });
  const events = driftEvents([
    ...opened.transitions,
    { action: 'workload.rollback-failed', reason: 'the rollback of Deployment web/storefront did not settle (not-settled: generation 3/3, 1 updated, 0 available of 2); it is not tried again for this drift: look at the workload', before: rolling, after: failedDrift },
    ...resolved.transitions,
  ]).map((e, i) => ({ id: `e-${i}`, 'detail-type': e.detailType, source: EVENT_SOURCES.workloads, time: '2026-12-07T10:10:00Z', detail: e.detail }));

  /** The summary line of the message a webhook of this kind receives for the event. */
  const summaryOf = (kind: 'slack' | 'teams' | 'json', event: (typeof events)[number]) => {
    const input = new MessageInput(messageFor(kind, event['detail-type'], NOTIFIABLE_EVENTS[event['detail-type']]!));
    const body = JSON.parse(transformInput({ InputPathsMap: input.inputPathsMap, InputTemplate: input.inputTemplate }, event, rule));
    return kind === 'slack' ? (body.text as string).split('\n')[1] : kind === 'teams' ? body.attachments[0].content.body[1].text : body.summary;
  };

  it('covers the three workload event types, published under fleetwarden.workloads', () => {
    expect(events.map((e) => e['detail-type'])).toEqual(['WorkloadDriftDetected', 'WorkloadDriftDetected', 'WorkloadRollbackFailed', 'WorkloadDriftResolved']);
    for (const e of events) expect(NOTIFIABLE_EVENTS[e['detail-type']]).toMatchObject({ sources: [EVENT_SOURCES.workloads], environment: false });
  });

  it('fills every placeholder with a string the detail always has, a cluster-scoped object included', () => {
    for (const e of events) {
      const placeholders = [...NOTIFIABLE_EVENTS[e['detail-type']]!.summary.matchAll(/<([A-Za-z0-9_.-]+)>/g)].map((m) => m[1]!);
      for (const p of placeholders) expect(typeof (e.detail as Record<string, unknown>)[p], `${e['detail-type']} <${p}>`).toBe('string');
    }
  });

  it('says the same summary in Slack, Teams and the JSON envelope', () => {
    expect(events.map((e) => summaryOf('slack', e))).toEqual([
      'Workload drift in cluster prod-eks (action: rollback): image drift of Deployment web/storefront: spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.28.0',
      'Workload drift in cluster prod-eks (action: alert): config drift of ClusterRole /reader: rules[0].verbs: get -> *',
      'Workload rollback failed in cluster prod-eks: the rollback of Deployment web/storefront did not settle (not-settled: generation 3/3, 1 updated, 0 available of 2); it is not tried again for this drift: look at the workload',
      'Workload ClusterRole reader in cluster prod-eks, config drift since 2026-12-07T10:00:00.000Z, is in sync again',
    ]);
    for (const e of events) expect([summaryOf('teams', e), summaryOf('json', e)]).toEqual([summaryOf('slack', e), summaryOf('slack', e)]);
  });
});
