import * as z from 'zod';
import { TerminalError } from '../shared/errors';
import { objectIdentity } from './desired-state';
import { type DriftTransition, type WorkloadDrift, HPA_KIND, confirm, driftEvents, effectiveManifest, hpaTargets } from './drift';
import { comparable, declaredDifferences } from './compare';
import { protectedNamespaces } from './policy';
import { FIELD_MANAGER, type KubeObject, type ObjectRef, type WorkloadPorts } from './port';

/** The steps of the WorkloadRollback workflow, as its Lambda task payloads. */
export const RollbackStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('apply'), driftId: z.string().min(1) }),
  z.strictObject({ step: z.literal('remove'), driftId: z.string().min(1) }),
  z.strictObject({ step: z.literal('check'), driftId: z.string().min(1), mode: z.enum(['apply', 'remove']) }),
  z.strictObject({ step: z.literal('record'), driftId: z.string().min(1), outcome: z.enum(['settled', 'not-settled', 'failed', 'skipped']), detail: z.string().max(2000).default('') }),
]);
export type RollbackStepInput = z.infer<typeof RollbackStepInputSchema>;

/** The drift's namespace is protected, or the rule no longer allows it: never acted on. */
export class RollbackRefusedError extends TerminalError {
  override name = 'Terminal.RollbackRefused';
}

export type RollbackStepResult =
  | { done: boolean; detail: string }
  | { settled: boolean; detail: string }
  | { recorded: boolean; state?: string };

const refOf = (d: WorkloadDrift): ObjectRef => ({ apiVersion: d.apiVersion, kind: d.kind, namespace: d.namespace, name: d.name });
const shown = (d: WorkloadDrift) => `${d.kind} ${d.namespace ? `${d.namespace}/` : ''}${d.name}`;
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/** The drift this execution acts on, if it still is to be acted on (state rolling-back; a retry finds its own work done). */
async function actingOn(driftId: string, deps: WorkloadPorts): Promise<WorkloadDrift | undefined> {
  const drift = await deps.drifts.get(driftId);
  if (!drift || drift.state !== 'rolling-back') return undefined;
  if (drift.namespace && protectedNamespaces(deps.policy).has(drift.namespace)) throw new RollbackRefusedError(`${shown(drift)} is in the protected namespace ${drift.namespace}: Fleetwarden never acts there`);
  return drift;
}

/**
 * Whether the object's rollout has settled: the controller saw the applied generation and every
 * replica is updated and available (Deployment, StatefulSet, DaemonSet); other kinds once stored.
 */
export function rolloutSettled(o: KubeObject): { settled: boolean; detail: string } {
  const status = (o.status ?? {}) as Record<string, unknown>;
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  const generation = o.metadata?.generation ?? 0;
  const observed = num(status.observedGeneration);
  if (o.kind === 'Deployment' || o.kind === 'StatefulSet') {
    const want = typeof spec.replicas === 'number' ? spec.replicas : 1;
    const updated = num(status.updatedReplicas);
    const ready = num(o.kind === 'Deployment' ? status.availableReplicas : status.readyReplicas);
    const total = num(status.replicas);
    const settled = observed >= generation && updated === want && ready === want && total === want;
    return { settled, detail: `generation ${observed}/${generation}, ${updated} updated, ${ready} available of ${want}${total > want ? ` (${total - want} old still running)` : ''}` };
  }
  if (o.kind === 'DaemonSet') {
    const want = num(status.desiredNumberScheduled);
    const updated = num(status.updatedNumberScheduled);
    const available = num(status.numberAvailable);
    return { settled: observed >= generation && updated === want && available === want, detail: `generation ${observed}/${generation}, ${updated} updated, ${available} available of ${want}` };
  }
  return { settled: true, detail: 'stored' };
}

/**
 * One step of a workload rollback. Every step re-reads the drift and re-checks its precondition
 * (still acting on it, still declared or still undeclared, not protected), so a retried or late
 * step changes nothing twice.
 */
export async function runRollbackStep(input: RollbackStepInput, deps: WorkloadPorts): Promise<RollbackStepResult> {
  switch (input.step) {
    case 'apply': {
      const drift = await actingOn(input.driftId, deps);
      if (!drift) return { done: false, detail: 'the drift is no longer being rolled back' };
      const state = await deps.desiredState();
      const declared = state.objects.find((o) => o.cluster === drift.cluster && objectIdentity(o) === objectIdentity(refOf(drift)));
      if (!declared) return { done: false, detail: `${shown(drift)} is no longer declared` };
      const workloads = await deps.connect(drift.cluster);
      const hpas = (await workloads.list(HPA_KIND.apiVersion, HPA_KIND.kind)).filter((h) => h.metadata?.namespace === drift.namespace);
      const scaled = hpaTargets(hpas).has(objectIdentity(declared));
      const live = await workloads.get(refOf(drift));
      const commit = declared.lastChange?.commit ?? (state.source.provenance === 'git' ? state.source.commit : null);
      if (live) {
        const manifest = effectiveManifest(declared, scaled);
        const differences = declaredDifferences(comparable(manifest), live);
        const wouldBe = differences.length ? await workloads.apply(manifest, { dryRun: true, fieldManager: FIELD_MANAGER, force: true }) : undefined;
        if (!wouldBe || !confirm({ identity: objectIdentity(declared), declared, live, manifest, differences }, wouldBe)) return { done: false, detail: `${shown(drift)} is in sync already` };
      }
      const applied = await workloads.apply(effectiveManifest(declared, scaled, commit), { dryRun: false, fieldManager: FIELD_MANAGER, force: true });
      return { done: true, detail: `${live ? 're-applied' : 'deployed'} ${shown(drift)} as declared in ${commit?.slice(0, 12) ?? 'the published state'} (generation ${applied.metadata?.generation ?? '?'})` };
    }
    case 'remove': {
      const drift = await actingOn(input.driftId, deps);
      if (!drift) return { done: false, detail: 'the drift is no longer being acted on' };
      if (drift.type !== 'unauthorized' || !drift.uid) throw new RollbackRefusedError(`${shown(drift)} is a ${drift.type} drift: only an undeclared workload is removed`);
      const state = await deps.desiredState();
      if (state.objects.some((o) => o.cluster === drift.cluster && objectIdentity(o) === objectIdentity(refOf(drift)))) return { done: false, detail: `${shown(drift)} is declared now` };
      const workloads = await deps.connect(drift.cluster);
      const live = await workloads.get(refOf(drift));
      if (!live) return { done: false, detail: `${shown(drift)} is gone already` };
      if (live.metadata?.uid !== drift.uid) return { done: false, detail: `${shown(drift)} is another object now (uid ${live.metadata?.uid}), left alone` };
      // The removed object goes into the ledger whole (without its state), so it can be re-created.
      const { status: _status, ...kept } = live;
      const { managedFields: _m, resourceVersion: _r, ...metadata } = live.metadata ?? {};
      await deps.ledger.append(
        { actor: 'workload-rollback', action: 'workload.removing', subject: drift.driftId, reason: `undeclared ${shown(drift)} (${drift.creator ?? 'creator unknown'}) past its grace: re-create it with this manifest if it was wanted`, eventId: drift.execution ?? drift.driftId, before: JSON.parse(JSON.stringify({ ...kept, metadata })) as Record<string, unknown>, after: null },
        { dedupeKey: `${drift.driftId}#removing#${drift.uid}` },
      );
      const outcome = await workloads.delete(refOf(drift), drift.uid);
      return { done: outcome === 'deleted', detail: outcome === 'deleted' ? `removed ${shown(drift)}` : `${shown(drift)} ${outcome === 'absent' ? 'was gone already' : 'is another object now, left alone'}` };
    }
    case 'check': {
      const drift = await deps.drifts.get(input.driftId);
      if (!drift) return { settled: false, detail: 'no such drift' };
      const live = await (await deps.connect(drift.cluster)).get(refOf(drift));
      if (input.mode === 'remove') return { settled: !live, detail: live ? `${shown(drift)} is still terminating` : `${shown(drift)} is gone` };
      if (!live) return { settled: false, detail: `${shown(drift)} does not exist` };
      return rolloutSettled(live);
    }
    case 'record': {
      const drift = await deps.drifts.get(input.driftId);
      if (!drift || drift.state !== 'rolling-back') return { recorded: false, state: drift?.state };
      const ok = input.outcome === 'settled' || input.outcome === 'skipped';
      const after: WorkloadDrift = { ...drift, state: ok ? 'rolled-back' : 'rollback-failed', outcome: `${input.outcome}${input.detail ? `: ${input.detail}` : ''}`, version: drift.version + 1 };
      const transition: DriftTransition = {
        action: ok ? (drift.type === 'unauthorized' ? 'workload.removed' : 'workload.rolled-back') : 'workload.rollback-failed',
        reason: ok ? `${shown(drift)}: ${input.detail || input.outcome}` : `the rollback of ${shown(drift)} did not settle (${input.detail || input.outcome}); it is not tried again for this drift: look at the workload`,
        before: drift,
        after,
      };
      const events = driftEvents([transition]);
      if (events.length) await deps.publisher.publish(events);
      await deps.drifts.record([transition], drift.execution ?? drift.driftId, 'workload-rollback');
      return { recorded: true, state: after.state };
    }
  }
}
