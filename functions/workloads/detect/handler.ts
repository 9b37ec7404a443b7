import { IdentifiedScheduledEventSchema } from '../../shared/scheduled-event';
import { executionArnOf, executionStatus, startExecution } from '../../shared/executions';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { type WorkloadDriftDeps, reportWorkloadDriftCycle, runWorkloadDriftCycle } from '../cycle';
import { type WorkloadDriftDetectorEnv, WorkloadDriftDetectorEnvSchema } from '../env';
import { workloadDeps } from '../wiring';

const wire = perEnvironment(
  (env: WorkloadDriftDetectorEnv): WorkloadDriftDeps => ({
    ...workloadDeps(env),
    rollbacks: {
      start: (name, input) => startExecution(env.ROLLBACK_STATE_MACHINE_ARN, name, input),
      status: (name) => executionStatus(executionArnOf(env.ROLLBACK_STATE_MACHINE_ARN, name)),
    },
    dryRun: env.FLEETWARDEN_DRY_RUN,
    clock: () => new Date(),
  }),
);

/** One workload drift cycle, on the WorkloadDrift rule's schedule (every policies.drift.cycleMinutes). */
export const handler = fleetHandler({ envSchema: WorkloadDriftDetectorEnvSchema, inputSchema: IdentifiedScheduledEventSchema }, async (input, tools) => {
  const reports = await runWorkloadDriftCycle(input.id, wire(tools.env));
  reportWorkloadDriftCycle(reports, tools);
  return { clusters: reports };
});
