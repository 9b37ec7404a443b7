import * as z from 'zod';

/**
 * A Spot capacity pool: (region, availability-zone ID, instance type). AZ IDs (`use1-az1`), not
 * names: `us-east-1a` maps to a different zone in every account, and pool risk is shared across
 * accounts.
 *
 * @example { "region": "us-east-1", "azId": "use1-az1", "instanceType": "m5.large" }
 */
export const PoolSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
  azId: z.string().regex(/^[a-z]{2,4}\d-az\d+$/, 'an availability-zone ID looks like use1-az1'),
  instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'an instance type looks like m5.large'),
});
export type Pool = z.infer<typeof PoolSchema>;

/** The table key of a pool: `us-east-1/use1-az1/m5.large`. */
export const poolKey = (pool: Pool): string => `${pool.region}/${pool.azId}/${pool.instanceType}`;

export function parsePoolKey(key: string): Pool {
  const [region, azId, instanceType] = key.split('/');
  return PoolSchema.parse({ region, azId, instanceType });
}
