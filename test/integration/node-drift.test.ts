import { randomBytes } from 'node:crypto';
import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand, UpdateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, CreateLaunchTemplateVersionCommand, CreateTagsCommand, DeleteLaunchTemplateCommand, EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { App, Stack } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AwsDriftFacts } from '../../functions/drift/aws';
import { detectNodeDrift, driftExecutionPrefix } from '../../functions/drift/nodes';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { startExecution } from '../../functions/shared/executions';
import { parseConfig } from '../../lib/config';
import { NodeDrift } from '../../lib/constructs/drift';
import { StateStore } from '../../lib/constructs/state-store';
import { type LocalFunction, type LocalStack, provision } from '../../local/provision';
import { invokeFunction } from '../../local/stepfunctions';
import type { CfnTemplate } from '../../local/template';

const OLD_AMI = 'ami-12345678';
const NEW_AMI = 'ami-87654321';
const run = randomBytes(3).toString('hex');
/** Groups the synthesized detector watches (its SWAP_GROUPS are fixed at synth). */
const names = { drifted: `drift-web-${run}`, steady: `drift-api-${run}`, latest: `drift-lat-${run}`, untouched: `drift-off-${run}` };

/** A group of On-Demand instances from a new launch template at `version`. */
async function createGroup(name: string, version: '1' | '$Latest' | '$Default', size = 3): Promise<{ templateId: string; instances: string[] }> {
  const lt = await awsClient(EC2Client).send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `${name}-lt`, LaunchTemplateData: { ImageId: OLD_AMI, InstanceType: 'm5.large' } }));
  const templateId = lt.LaunchTemplate!.LaunchTemplateId!;
  await awsClient(AutoScalingClient).send(
    new CreateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: size, MaxSize: size, DesiredCapacity: size, LaunchTemplate: { LaunchTemplateId: templateId, Version: version }, AvailabilityZones: ['us-east-1a', 'us-east-1b'] }),
  );
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
  return { templateId, instances: g.Instances!.map((i) => i.InstanceId!) };
}

/** A new launch template version with a new AMI (version 2). */
async function newVersion(templateId: string): Promise<void> {
  await awsClient(EC2Client).send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: templateId, SourceVersion: '1', LaunchTemplateData: { ImageId: NEW_AMI } }));
}

/** A small stack: the state store, a stand-in for the batch machine, and the drift detector under test. */
function driftTemplate(): CfnTemplate {
  const config = parseConfig({
    homeRegion: 'us-east-1',
    regions: ['us-east-1'],
    accounts: [{ id: '123456789012', name: 'home', environment: 'PROD' }],
    swaps: { groups: [{ name: names.drifted }, { name: names.steady }, { name: names.latest }, { name: names.untouched, driftRepair: false }] },
  });
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'DriftIntegration', { env: { region: 'us-east-1' } });
  const store = new StateStore(stack, 'StateStore', { config });
  const batch = new sfn.StateMachine(stack, 'SwapBatch', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, 'Work through the batch')) });
  new NodeDrift(stack, 'NodeDrift', { config, store, batch });
  return app.synth().getStackByName('DriftIntegration').template as CfnTemplate;
}

let stack: LocalStack;
let detector: LocalFunction;
let batchArn: string;

beforeAll(async () => {
  stack = await provision(driftTemplate());
  detector = [...stack.functions.values()].find((f) => f.entry === 'functions/drift/handler/handler.ts')!;
  batchArn = stack.ref('SwapBatch');
});

const scheduledEvent = () => ({ version: '0', id: randomBytes(8).toString('hex'), source: 'aws.events', 'detail-type': 'Scheduled Event', account: '123456789012', time: new Date().toISOString(), region: 'us-east-1', resources: [], detail: {} });

async function executions() {
  return (await awsClient(SFNClient).send(new ListExecutionsCommand({ stateMachineArn: batchArn }))).executions ?? [];
}

describe('node drift in moto', () => {
  it('reports every instance drifted when the group moves to a new version with a new AMI, naming version and AMI', async () => {
    // Prepare
    const { templateId, instances } = await createGroup(`drift-probe-${run}`, '1');
    await newVersion(templateId);
    await awsClient(AutoScalingClient).send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: `drift-probe-${run}`, LaunchTemplate: { LaunchTemplateId: templateId, Version: '2' } }));
    // Act
    const findings = detectNodeDrift((await new AwsDriftFacts('us-east-1').group(`drift-probe-${run}`))!);
    // Assess: moto reports the group's new version for each instance; EC2's launch tag still says 1.
    expect(findings.map((f) => f.instanceId).sort()).toEqual([...instances].sort());
    for (const f of findings) {
      expect(f).toMatchObject({ repairable: true, reason: `launch template version 1 != 2; ami ${OLD_AMI} != ${NEW_AMI}`, target: { launchTemplateId: templateId, version: 2, imageId: NEW_AMI } });
    }
  });

  it('resolves $Latest: a new version makes the running instances drift from it', async () => {
    const { templateId } = await createGroup(`drift-latest-${run}`, '$Latest', 2);
    const facts = new AwsDriftFacts('us-east-1');
    expect(detectNodeDrift((await facts.group(`drift-latest-${run}`))!)).toEqual([]);
    await newVersion(templateId);
    expect(detectNodeDrift((await facts.group(`drift-latest-${run}`))!).map((f) => f.differences)).toEqual([
      [`launch template version 1 != 2`, `ami ${OLD_AMI} != ${NEW_AMI}`],
      [`launch template version 1 != 2`, `ami ${OLD_AMI} != ${NEW_AMI}`],
    ]);
  });

  it('reads the launch template of a mixed instances policy', async () => {
    const lt = await awsClient(EC2Client).send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `drift-mixed-${run}-lt`, LaunchTemplateData: { ImageId: OLD_AMI, InstanceType: 'm5.large' } }));
    const templateId = lt.LaunchTemplate!.LaunchTemplateId!;
    const mixed = (version: string) => ({
      LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateId: templateId, Version: version }, Overrides: [{ InstanceType: 'm5.large' }, { InstanceType: 'c5.large' }] },
      InstancesDistribution: { OnDemandPercentageAboveBaseCapacity: 100 },
    });
    await awsClient(AutoScalingClient).send(
      new CreateAutoScalingGroupCommand({ AutoScalingGroupName: `drift-mixed-${run}`, MinSize: 2, MaxSize: 2, DesiredCapacity: 2, MixedInstancesPolicy: mixed('1'), AvailabilityZones: ['us-east-1a'] }),
    );
    const facts = new AwsDriftFacts('us-east-1');
    expect(detectNodeDrift((await facts.group(`drift-mixed-${run}`))!)).toEqual([]);
    await newVersion(templateId);
    await awsClient(AutoScalingClient).send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: `drift-mixed-${run}`, MixedInstancesPolicy: mixed('2') }));
    const findings = detectNodeDrift((await facts.group(`drift-mixed-${run}`))!);
    expect(findings.map((f) => f.reason)).toEqual([`launch template version 1 != 2; ami ${OLD_AMI} != ${NEW_AMI}`, `launch template version 1 != 2; ami ${OLD_AMI} != ${NEW_AMI}`]);
  });

  it('reports nothing for a group whose instances match it, or for a group that does not exist', async () => {
    await createGroup(`drift-same-${run}`, '$Default', 2);
    expect(detectNodeDrift((await new AwsDriftFacts('us-east-1').group(`drift-same-${run}`))!)).toEqual([]);
    expect(await new AwsDriftFacts('us-east-1').group(`no-such-group-${run}`)).toBeUndefined();
  });

  it('runs from the schedule twice and starts exactly one batch of the repairable drifted instances, recording each drift once', async () => {
    // Prepare: a capture of the Fleetwarden bus, a drifted group with one do-not-disrupt instance, a steady group.
    const sqs = awsClient(SQSClient);
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${stack.prefix}-drift-capture` }))).QueueUrl!;
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    const bus = stack.ref('StateStoreBus');
    const events = awsClient(EventBridgeClient);
    await events.send(new PutRuleCommand({ Name: `${stack.prefix}-drift-capture`, EventBusName: bus, EventPattern: JSON.stringify({ source: ['fleetwarden.drift'] }) }));
    await events.send(new PutTargetsCommand({ Rule: `${stack.prefix}-drift-capture`, EventBusName: bus, Targets: [{ Id: 'capture', Arn: queueArn }] }));

    const drifted = await createGroup(names.drifted, '1');
    await createGroup(names.steady, '1', 2);
    const untouched = await createGroup(names.untouched, '1', 1);
    await newVersion(drifted.templateId);
    await newVersion(untouched.templateId);
    for (const name of [names.drifted, names.untouched]) {
      const templateId = name === names.drifted ? drifted.templateId : untouched.templateId;
      await awsClient(AutoScalingClient).send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, LaunchTemplate: { LaunchTemplateId: templateId, Version: '2' } }));
    }
    const [protectedId, ...repairable] = drifted.instances;
    await awsClient(EC2Client).send(new CreateTagsCommand({ Resources: [protectedId!], Tags: [{ Key: 'fleetwarden:do-not-disrupt', Value: 'true' }] }));
    await createGroup(names.latest, '$Latest', 1);

    // Act
    const first = (await invokeFunction(stack, detector, scheduledEvent())) as { groups: { group: string; status: string; recorded: number; batch?: { name: string; outcome: string } }[] };
    const second = (await invokeFunction(stack, detector, scheduledEvent())) as typeof first;

    // Assess: the groups with driftRepair only; one batch, started by the first cycle.
    expect(first.groups.map((g) => [g.group, g.status, g.recorded, g.batch?.outcome])).toEqual([
      [names.drifted, 'drifted', 3, 'started'],
      [names.steady, 'in-sync', 0, undefined],
      [names.latest, 'in-sync', 0, undefined],
    ]);
    expect(second.groups[0]).toMatchObject({ status: 'drifted', recorded: 0, batch: { name: first.groups[0]!.batch!.name, outcome: 'already-started' } });

    const started = await executions();
    expect(started).toHaveLength(1);
    expect(started[0]!.name).toBe(first.groups[0]!.batch!.name);
    const described = await awsClient(SFNClient).send(new DescribeExecutionCommand({ executionArn: started[0]!.executionArn }));
    expect(JSON.parse(described.input!)).toEqual({
      groups: [names.drifted],
      instanceIds: repairable,
      trigger: 'drift',
      reason: `node drift: 2 instances differ from launch template ${drifted.templateId} version 2 (${NEW_AMI})`,
      canary: true,
      urgent: false,
    });

    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    const entries: Record<string, unknown>[] = [];
    for await (const entry of ledger.entries()) entries.push(entry);
    const drifts = entries.filter((e) => e.action === 'node.drifted');
    expect(drifts.map((e) => e.subject).sort()).toEqual(drifted.instances.map((id) => `us-east-1/${names.drifted}/${id}`).sort());
    expect(drifts.find((e) => e.subject === `us-east-1/${names.drifted}/${protectedId}`)!.reason).toBe(
      `launch template version 1 != 2; ami ${OLD_AMI} != ${NEW_AMI} (not repaired: tagged fleetwarden:do-not-disrupt=true)`,
    );

    const messages = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))).Messages ?? [];
    const announced = messages.map((m) => JSON.parse(m.Body!) as { 'detail-type': string; detail: { instanceId: string; repairable: boolean; batchExecutionName?: string } });
    expect(announced.map((e) => e['detail-type'])).toEqual(['NodeDrifted', 'NodeDrifted', 'NodeDrifted']);
    expect(announced.filter((e) => e.detail.repairable).map((e) => e.detail.batchExecutionName)).toEqual([started[0]!.name, started[0]!.name]);
  });
});

describe('the StartExecution adapter', () => {
  it('starts an execution under a name, and calls a repeat with another input already started', async () => {
    const first = await startExecution(batchArn, `adapter-${run}`, { groups: ['web'] });
    const again = await startExecution(batchArn, `adapter-${run}`, { groups: ['api'] });
    expect(first).toEqual({ started: true, executionArn: expect.stringMatching(new RegExp(`:execution:.+:adapter-${run}$`)) });
    expect(again).toEqual({ started: false, executionArn: first.executionArn });
  });

  it('refuses a name Step Functions would refuse', async () => {
    await expect(startExecution(batchArn, 'no spaces allowed', {})).rejects.toThrow('invalid execution name');
  });
});

describe('the deployed detector and its input', () => {
  it('should refuse an invocation that is not a Scheduled Event with Terminal.InvalidInput naming the field, doing nothing', async () => {
    // Prepare
    const before = (await executions()).length;
    // Act
    const invoked = invokeFunction(stack, detector, { ...scheduledEvent(), source: 'aws.ec2' });
    // Assess
    await expect(invoked).rejects.toMatchObject({ name: 'Terminal.InvalidInput', message: expect.stringContaining('source: ') });
    expect(await executions()).toHaveLength(before);
  });
});

describe('a drift cycle that cannot read a group', () => {
  it('should repair the other groups, then fail with Terminal.DriftCycleFailed naming the group (not retried: the next cycle is the retry)', async () => {
    // Prepare: a group whose launch template was deleted, and a drifted group after it.
    const broken = `drift-gone-${run}`;
    const fresh = `drift-new-${run}`;
    const gone = await createGroup(broken, '1', 1);
    await awsClient(EC2Client).send(new DeleteLaunchTemplateCommand({ LaunchTemplateId: gone.templateId }));
    const drifted = await createGroup(fresh, '1', 2);
    await newVersion(drifted.templateId);
    await awsClient(AutoScalingClient).send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: fresh, LaunchTemplate: { LaunchTemplateId: drifted.templateId, Version: '2' } }));
    const configured = detector.environment.SWAP_GROUPS!;
    detector.environment.SWAP_GROUPS = JSON.stringify([{ name: broken, driftRepair: true }, { name: fresh, driftRepair: true }]);
    try {
      // Act
      const cycle = invokeFunction(stack, detector, scheduledEvent());
      // Assess
      await expect(cycle).rejects.toMatchObject({ name: 'Terminal.DriftCycleFailed', message: expect.stringContaining(`drift cycle failed for ${broken} (`) });
      expect((await executions()).filter((e) => e.name!.startsWith(driftExecutionPrefix(fresh)))).toHaveLength(1);
    } finally {
      detector.environment.SWAP_GROUPS = configured;
    }
  });
});
