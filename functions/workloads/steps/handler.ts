import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { type WorkloadDriftEnv, WorkloadDriftEnvSchema } from '../env';
import { RollbackStepInputSchema, runRollbackStep } from '../rollback';
import { workloadDeps } from '../wiring';

const wire = perEnvironment((env: WorkloadDriftEnv) => workloadDeps(env));

/** The re-apply, remove, check and record steps of the WorkloadRollback workflow. */
export const handler = fleetHandler({ envSchema: WorkloadDriftEnvSchema, inputSchema: RollbackStepInputSchema }, async (input, { env, metrics }) => {
  metrics.addMetric('WorkloadRollbackSteps', 'Count', 1);
  return runRollbackStep(input, wire(env));
});
