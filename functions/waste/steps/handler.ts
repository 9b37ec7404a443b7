import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { WasteStepInputSchema, runWasteStep, stepMetrics } from '../steps';
import { wasteDeps } from '../wiring';
import { type WasteStepsEnv, WasteStepsEnvSchema } from './env';

const wire = perEnvironment((env: WasteStepsEnv) => wasteDeps(env, 'waste-scan'));

/** The scan, report and clean steps of the WasteScan workflow. */
export const handler = fleetHandler({ envSchema: WasteStepsEnvSchema, inputSchema: WasteStepInputSchema }, async (input, { env, metrics }) => {
  const result = await runWasteStep(input, wire(env));
  for (const point of stepMetrics(input.step, result)) {
    const unit = point.unit === 'Count' ? MetricUnit.Count : MetricUnit.NoUnit;
    if (!point.dimensions) {
      metrics.addMetric(point.name, unit, point.value);
      continue;
    }
    const single = metrics.singleMetric();
    for (const [name, value] of Object.entries(point.dimensions)) single.addDimension(name, value);
    single.addMetric(point.name, unit, point.value);
  }
  return result;
});
