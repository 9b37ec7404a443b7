import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PodFacts, nextDelayMs, planDrain, refusalMessage, withTaint } from '../../functions/kubernetes/drain';
import { instanceIdOfProviderId } from '../../functions/kubernetes/port';

const DND = ['fleetwarden.io/do-not-disrupt', 'karpenter.sh/do-not-disrupt'];
const pod = (name: string, meta: Partial<NonNullable<PodFacts['metadata']>> = {}): PodFacts => ({ metadata: { name, namespace: 'shop', uid: `uid-${name}`, ...meta } });

describe('drain plan', () => {
  it('evicts Deployment, StatefulSet and bare pods; leaves DaemonSet and mirror pods; waits for terminating ones', () => {
    const plan = planDrain(
      [
        pod('web-7d9c-abcde', { ownerReferences: [{ kind: 'ReplicaSet', name: 'web-7d9c', controller: true }] }),
        pod('db-0', { ownerReferences: [{ kind: 'StatefulSet', name: 'db', controller: true }] }),
        pod('debug'),
        pod('fluent-bit-x2x9k', { ownerReferences: [{ kind: 'DaemonSet', name: 'fluent-bit', controller: true }] }),
        pod('kube-proxy-ip-10-0-1-7', { annotations: { 'kubernetes.io/config.mirror': 'e3b0c442' } }),
        pod('web-7d9c-zzzzz', { deletionTimestamp: '2026-11-22T10:00:00Z' }),
      ],
      { doNotDisruptAnnotations: DND },
    );
    expect(plan.evict.map((p) => p.name)).toEqual(['web-7d9c-abcde', 'db-0', 'debug']);
    expect(plan.skip.map((p) => [p.name, p.reason])).toEqual([
      ['fluent-bit-x2x9k', 'daemonset'],
      ['kube-proxy-ip-10-0-1-7', 'mirror'],
    ]);
    expect(plan.terminating.map((p) => p.name)).toEqual(['web-7d9c-zzzzz']);
    expect(plan.evict[0]).toEqual({ namespace: 'shop', name: 'web-7d9c-abcde', uid: 'uid-web-7d9c-abcde' });
  });

  it('never evicts a pod annotated do-not-disrupt "true" by either annotation, and only "true" counts', () => {
    const plan = planDrain(
      [pod('a', { annotations: { 'fleetwarden.io/do-not-disrupt': 'true' } }), pod('b', { annotations: { 'karpenter.sh/do-not-disrupt': 'true' } }), pod('c', { annotations: { 'fleetwarden.io/do-not-disrupt': 'false' } })],
      { doNotDisruptAnnotations: DND },
    );
    expect(plan.skip).toEqual([expect.objectContaining({ name: 'a', reason: 'do-not-disrupt' }), expect.objectContaining({ name: 'b', reason: 'do-not-disrupt' })]);
    expect(plan.evict.map((p) => p.name)).toEqual(['c']);
  });

  it('puts every named pod in exactly one place, and never a DaemonSet or mirror pod among the evictions', () => {
    const podArb = fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
      daemonSet: fc.boolean(),
      mirror: fc.boolean(),
      protectedPod: fc.boolean(),
      terminating: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.uniqueArray(podArb, { selector: (p) => p.name, maxLength: 30 }), (specs) => {
        const pods = specs.map((s) =>
          pod(s.name, {
            ownerReferences: s.daemonSet ? [{ kind: 'DaemonSet', name: 'ds', controller: true }] : [],
            annotations: { ...(s.mirror ? { 'kubernetes.io/config.mirror': 'x' } : {}), ...(s.protectedPod ? { 'karpenter.sh/do-not-disrupt': 'true' } : {}) },
            deletionTimestamp: s.terminating ? '2026-11-22T10:00:00Z' : undefined,
          }),
        );
        const plan = planDrain(pods, { doNotDisruptAnnotations: DND });
        const placed = [...plan.evict, ...plan.skip, ...plan.terminating].map((p) => p.name).sort();
        expect(placed).toEqual(specs.map((s) => s.name).sort());
        for (const evicted of plan.evict) {
          const spec = specs.find((s) => s.name === evicted.name)!;
          expect(spec.daemonSet || spec.mirror || spec.protectedPod || spec.terminating).toBe(false);
        }
      }),
    );
  });
});

describe('taints, backoff and refusals', () => {
  it('adds our taint next to the others, or reports the one already there with its value', () => {
    const theirs = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' as const };
    const ours = { key: 'fleetwarden.io/interruption', value: 'event-2', effect: 'NoSchedule' as const };
    expect(withTaint([theirs], ours)).toEqual({ next: [theirs, ours] });
    expect(withTaint([theirs, { ...ours, value: 'event-1' }], ours)).toEqual({ present: { ...ours, value: 'event-1' } });
  });

  it('retries quickly after progress and backs off to at most 2 s while every eviction is refused', () => {
    expect(nextDelayMs(0)).toBe(100);
    const delays = Array.from({ length: 12 }, (_, i) => nextDelayMs(i + 1));
    expect(delays[0]).toBe(200);
    expect(delays.every((d, i) => i === 0 || d >= delays[i - 1]!)).toBe(true);
    expect(Math.max(...delays)).toBe(2_000);
  });

  it('reads the budget that refused an eviction from the API status body', () => {
    const body = {
      kind: 'Status',
      status: 'Failure',
      message: 'Cannot evict pod as it would violate the pod\'s disruption budget.',
      reason: 'TooManyRequests',
      details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 4 healthy pods and has 4 currently' }] },
      code: 429,
    };
    expect(refusalMessage(body)).toBe('The disruption budget web needs 4 healthy pods and has 4 currently');
    expect(refusalMessage(JSON.stringify(body))).toBe('The disruption budget web needs 4 healthy pods and has 4 currently');
    expect(refusalMessage({ message: 'too many requests' })).toBe('too many requests');
  });

  it('maps an AWS providerID to its instance id, and nothing else to one', () => {
    expect(instanceIdOfProviderId('aws:///us-east-1a/i-0123456789abcdef0')).toBe('i-0123456789abcdef0');
    expect(instanceIdOfProviderId('kind://docker/kind/kind-worker')).toBeUndefined();
    expect(instanceIdOfProviderId(undefined)).toBeUndefined();
  });
});
