import { inject } from 'vitest';
import { motoEnvironment } from '../../local/moto';

// Every SDK client built through functions/shared/aws.ts now talks to the run's moto server.
Object.assign(process.env, motoEnvironment(inject('motoEndpoint')), {
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
});
