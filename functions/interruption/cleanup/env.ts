import * as z from 'zod';
import { BaseEnvSchema } from '../../shared/env';

export const QuarantineCleanupEnvSchema = BaseEnvSchema.extend({
  POOL_RISK_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
});
