import * as z from 'zod';
import { BaseEnvSchema } from '../../shared/env';

export const LedgerVerifyEnvSchema = BaseEnvSchema.extend({
  LEDGER_TABLE_NAME: z.string().min(1),
  ARCHIVE_BUCKET_NAME: z.string().min(1),
  SIGNING_KEY_ID: z.string().min(1),
});
export type LedgerVerifyEnv = z.infer<typeof LedgerVerifyEnvSchema>;
