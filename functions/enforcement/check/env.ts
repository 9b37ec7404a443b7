import * as z from 'zod';
import { EnforcementEnvSchema } from '../env';

export const EnforcementCheckEnvSchema = EnforcementEnvSchema.extend({
  DEAD_LETTER_QUEUE_URL: z.string().min(1),
});
export type EnforcementCheckEnv = z.infer<typeof EnforcementCheckEnvSchema>;
