import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { awsClientConfig } from '../../functions/shared/aws';
import { BaseEnvSchema } from '../../functions/shared/env';
import { RETRYABLE_ERROR_NAMES, InvalidInputError, LedgerContentionError, LedgerTamperedError, isRetryable } from '../../functions/shared/errors';
import { fleetHandler } from '../../functions/shared/middleware';

const EnvSchema = BaseEnvSchema.extend({ TABLE_NAME: z.string().min(1) });
const InputSchema = z.strictObject({ instanceId: z.string().regex(/^i-[0-9a-f]+$/), count: z.number().int().default(1) });
const handler = fleetHandler({ envSchema: EnvSchema, inputSchema: InputSchema }, async (input, { env }) => ({ table: env.TABLE_NAME, dryRun: env.FLEETWARDEN_DRY_RUN, ...input }));

const context = { functionName: 'test', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 1000 } as never;
const baseEnv = { POWERTOOLS_SERVICE_NAME: 'fleetwarden-test', POWERTOOLS_METRICS_NAMESPACE: 'Fleetwarden', FLEETWARDEN_DRY_RUN: 'true' };
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('fleetHandler (the shared Middy bundle)', () => {
  it('gives the use case parsed input and the typed environment', async () => {
    Object.assign(process.env, baseEnv, { TABLE_NAME: 'flags' });
    await expect(handler({ instanceId: 'i-0abc' }, context)).resolves.toEqual({ table: 'flags', dryRun: true, instanceId: 'i-0abc', count: 1 });
  });

  it('fails with Terminal.InvalidEnvironment naming the missing variable', async () => {
    Object.assign(process.env, baseEnv);
    delete process.env.TABLE_NAME;
    await expect(handler({ instanceId: 'i-0abc' }, context)).rejects.toMatchObject({
      name: 'Terminal.InvalidEnvironment',
      message: expect.stringContaining('TABLE_NAME'),
    });
  });

  it('fails with Terminal.InvalidInput naming every bad field', async () => {
    Object.assign(process.env, baseEnv, { TABLE_NAME: 'flags' });
    const failure = handler({ instanceId: 'web-1', count: 1.5, extra: true }, context);
    await expect(failure).rejects.toMatchObject({ name: 'Terminal.InvalidInput' });
    await expect(failure).rejects.toThrow(/instanceId: .*count: .*Unrecognized key: "extra"/s);
  });
});

describe('errors', () => {
  it('are named for what a state machine should do with them', () => {
    expect(new LedgerContentionError('x').name).toBe('Retryable.LedgerContention');
    expect(new LedgerTamperedError('x').name).toBe('Terminal.LedgerTampered');
    expect(isRetryable(new LedgerContentionError('x'))).toBe(true);
    expect(isRetryable(new InvalidInputError('x'))).toBe(false);
    expect(RETRYABLE_ERROR_NAMES).toContain(new LedgerContentionError('x').name);
  });

  it('keep their cause', () => {
    const cause = new Error('throttled');
    expect(new LedgerContentionError('lost', { cause }).cause).toBe(cause);
  });
});

describe('AWS client factory', () => {
  it('points every client at the emulator endpoint when one is set, path-style for S3', () => {
    process.env.FLEETWARDEN_AWS_ENDPOINT = 'http://127.0.0.1:5999';
    expect(awsClientConfig({ region: 'eu-west-1' })).toMatchObject({ endpoint: 'http://127.0.0.1:5999', forcePathStyle: true, region: 'eu-west-1' });
  });

  it('leaves the SDK defaults alone in Lambda', () => {
    delete process.env.FLEETWARDEN_AWS_ENDPOINT;
    process.env.AWS_REGION = 'ap-southeast-2';
    const config = awsClientConfig();
    expect(config.endpoint).toBeUndefined();
    expect(config.credentials).toBeUndefined();
    expect(config.region).toBe('ap-southeast-2');
  });
});

describe('Step Functions error names in the local runner', async () => {
  const { stepFunctionsErrorName } = await import('../../local/stepfunctions');
  it('follows the documented ServiceName.ErrorNameException convention', () => {
    expect(stepFunctionsErrorName('s3', 'NoSuchKey', false)).toBe('S3.NoSuchKeyException');
    expect(stepFunctionsErrorName('dynamodb', 'ConditionalCheckFailedException', false)).toBe('DynamoDb.ConditionalCheckFailedException');
    expect(stepFunctionsErrorName('dynamodb', 'ConditionalCheckFailedException', true)).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(stepFunctionsErrorName('autoscaling', 'Throttling', false)).toBe('AutoScaling.ThrottlingException');
    expect(stepFunctionsErrorName('ec2', 'InvalidInstanceID.NotFound', false)).toBe('Ec2.Ec2Exception');
  });
});
