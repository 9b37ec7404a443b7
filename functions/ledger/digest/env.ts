import { BaseEnvSchema } from '../../shared/env';
import * as z from 'zod';

export const LedgerDigestEnvSchema = BaseEnvSchema.extend({
  LEDGER_TABLE_NAME: z.string().min(1),
  SIGNING_KEY_ID: z.string().min(1),
});
export type LedgerDigestEnv = z.infer<typeof LedgerDigestEnvSchema>;
