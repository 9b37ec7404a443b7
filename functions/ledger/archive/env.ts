import * as z from 'zod';
import { BaseEnvSchema } from '../../shared/env';

export const LedgerArchiveEnvSchema = BaseEnvSchema.extend({
  LEDGER_TABLE_NAME: z.string().min(1),
  /** The Locks table, which holds the archive's position per chain. */
  LOCKS_TABLE_NAME: z.string().min(1),
  ARCHIVE_BUCKET_NAME: z.string().min(1),
});
export type LedgerArchiveEnv = z.infer<typeof LedgerArchiveEnvSchema>;
