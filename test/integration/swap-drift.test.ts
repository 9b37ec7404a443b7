import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateVersionCommand, DescribeInstancesCommand, DescribeLaunchTemplatesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { runStartedExecutions } from '../../local/executions';
import { type LocalStack, provision } from '../../local/provision';
import { invokeFunction } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { createGroup, group, orphans } from './swap-support';

const NEW_AMI = 'ami-0feedbeef';
const GROUP = `drift-e2e-${randomBytes(3).toString('hex')}`;

let stack: LocalStack;

beforeAll(async () => {
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  stack = await provision(synthTemplate({ ...base, dryRun: false, swaps: { groups: [{ name: GROUP }] } }));
});

async function images(name: string): Promise<string[]> {
  const ids = (await group(name)).instances.map((i) => i.id);
  const out = await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: ids }));
  return out.Reservations!.flatMap((r) => r.Instances ?? []).map((i) => i.ImageId!);
}

async function detect() {
  const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith('NodeDriftNodeDriftDetector'))!;
  return invokeFunction(stack, fn, { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
}

describe('node drift is repaired by the same swap: detector -> StartExecution (moto) -> SwapBatch -> NodeSwap', () => {
  it('replaces every instance launched from an older launch template version, then finds the group in sync', async () => {
    await createGroup(GROUP, 3);
    const templateName = `${GROUP}-lt`;
    const lt = (await awsClient(EC2Client).send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [templateName] }))).LaunchTemplates![0]!;
    // The group follows $Latest: a new version with a new AMI makes every running instance drift.
    await awsClient(EC2Client).send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: lt.LaunchTemplateId, SourceVersion: '1', LaunchTemplateData: { ImageId: NEW_AMI } }));
    expect(new Set(await images(GROUP))).toEqual(new Set(['ami-12345678']));

    await detect();
    const batchArn = [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith('SwapBatchBatchStateMachine'))!.arn;
    const started = (await awsClient(SFNClient).send(new ListExecutionsCommand({ stateMachineArn: batchArn }))).executions!;
    expect(started).toHaveLength(1);
    expect(started[0]!.name).toMatch(new RegExp(`^drift-${GROUP}`));

    const runs = await runStartedExecutions(stack, 'SwapBatchBatchStateMachine', { waitMs: 0, retryMs: 0 });
    expect(runs).toHaveLength(1);
    expect(runs[0]!.input).toMatchObject({ groups: [GROUP], trigger: 'drift' });
    expect(runs[0]!.result.status).toBe('SUCCEEDED');
    expect(runs[0]!.result.children.map((c) => c.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);

    expect(await images(GROUP)).toEqual([NEW_AMI, NEW_AMI, NEW_AMI]);
    const after = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [GROUP] }))).AutoScalingGroups![0]!;
    expect(after).toMatchObject({ DesiredCapacity: 3, MaxSize: 3 });
    expect(await orphans()).toEqual([]);

    // The next cycle finds nothing to do: no new batch, no new drift entry.
    await detect();
    expect((await awsClient(SFNClient).send(new ListExecutionsCommand({ stateMachineArn: batchArn }))).executions).toHaveLength(1);
    const drifted: string[] = [];
    for await (const e of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) if (e.action === 'node.drifted') drifted.push(String(e.subject));
    expect(drifted).toHaveLength(3);
  });
});
