import * as z from 'zod';

/** An EC2 instance id: `i-` and 8 (older) or 17 hexadecimal digits. */
export const InstanceIdSchema = z.string().regex(/^i-[0-9a-f]{8,17}$/, 'an instance id looks like i-0123456789abcdef0');

/** An AWS account id: 12 digits. */
export const AccountIdSchema = z.string().regex(/^\d{12}$/, 'an account id is 12 digits');

export function isInstanceId(value: string): boolean {
  return InstanceIdSchema.safeParse(value).success;
}

/** The EC2 instance id in an AWS providerID (`aws:///us-east-1a/i-0abc...`), if it names one. */
export function instanceIdOfProviderId(providerID: string | undefined): string | undefined {
  const match = /^aws:\/\/\/[^/]*\/(i-[0-9a-f]{8,17})$/.exec(providerID ?? '');
  return match?.[1];
}
