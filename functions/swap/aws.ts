import { createHash } from 'node:crypto';
import {
  AttachInstancesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DetachInstancesCommand,
  ResumeProcessesCommand,
  SetDesiredCapacityCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeAvailabilityZonesCommand, DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { awsClient } from '../shared/aws';
import type { LockStore } from '../shared/locks';
import type { CompensationAction, SwapObservation } from './compensate';
import { DO_NOT_DISRUPT_TAG } from '../shared/groups';
import type { Candidate, GroupFacts, SwapPlan } from './model';

export const SWAP_TAG = 'fleetwarden:swap';

/** Errors from a launch that mean "this pool has no capacity now": try the next pool. */
export const CAPACITY_ERRORS = ['InsufficientInstanceCapacity', 'InsufficientCapacity', 'SpotMaxPriceTooLow', 'MaxSpotInstanceCountExceeded', 'InsufficientHostCapacity'];

/** The Auto Scaling and EC2 calls the swap's logic steps need (plain calls run as Step Functions SDK tasks). */
export class SwapAws {
  /** Without `locks` (a reader that has no access to the Locks table) observations leave the lock out. */
  constructor(
    private readonly region: string,
    private readonly locks?: LockStore,
  ) {}

  private get asg() {
    return awsClient(AutoScalingClient, { region: this.region });
  }
  private get ec2() {
    return awsClient(EC2Client, { region: this.region });
  }

  async group(name: string): Promise<GroupFacts | undefined> {
    const out = await this.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
    const g = out.AutoScalingGroups?.[0];
    if (!g) return undefined;
    const ids = (g.Instances ?? []).map((i) => i.InstanceId!);
    const details = new Map<string, { spot: boolean; type: string; tags: Record<string, string> }>();
    if (ids.length) {
      const described = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
      for (const i of (described.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        details.set(i.InstanceId!, { spot: i.InstanceLifecycle === 'spot', type: i.InstanceType ?? '', tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value!])) });
      }
    }
    const template = g.LaunchTemplate ?? g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
    const subnetIds = (g.VPCZoneIdentifier ?? '').split(',').map((id) => id.trim()).filter(Boolean);
    const subnetsByAz: Record<string, string> = {};
    if (subnetIds.length) {
      const subnets = await this.ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnetIds }));
      for (const subnet of subnets.Subnets ?? []) if (subnet.AvailabilityZone && !subnetsByAz[subnet.AvailabilityZone]) subnetsByAz[subnet.AvailabilityZone] = subnet.SubnetId!;
    }
    const overrides = (g.MixedInstancesPolicy?.LaunchTemplate?.Overrides ?? []).map((o) => o.InstanceType!).filter(Boolean);
    const instances = (g.Instances ?? []).map((i) => {
      const d = details.get(i.InstanceId!);
      return {
        instanceId: i.InstanceId!,
        lifecycleState: i.LifecycleState ?? 'Unknown',
        azName: i.AvailabilityZone ?? '',
        instanceType: d?.type || i.InstanceType || '',
        spot: d?.spot ?? false,
        doNotDisrupt: d?.tags[DO_NOT_DISRUPT_TAG] === 'true',
        protectedFromScaleIn: i.ProtectedFromScaleIn ?? false,
      };
    });
    const tags = Object.fromEntries((g.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    const clusterTag = tags['eks:cluster-name'] || Object.keys(tags).find((k) => k.startsWith('kubernetes.io/cluster/'))?.slice('kubernetes.io/cluster/'.length) || undefined;
    return {
      name: g.AutoScalingGroupName!,
      min: g.MinSize!,
      max: g.MaxSize!,
      desired: g.DesiredCapacity!,
      instances,
      suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName!),
      launchTemplate: template?.LaunchTemplateId ? { LaunchTemplateId: template.LaunchTemplateId, Version: template.Version ?? '$Default' } : undefined,
      instanceTypes: overrides.length ? overrides : [...new Set(instances.map((i) => i.instanceType).filter(Boolean))],
      azNames: g.AvailabilityZones ?? [],
      subnetsByAz,
      ...(clusterTag ? { clusterTag } : {}),
    };
  }

  async zoneIds(): Promise<Map<string, string>> {
    const out = await this.ec2.send(new DescribeAvailabilityZonesCommand({}));
    return new Map((out.AvailabilityZones ?? []).map((z) => [z.ZoneName!, z.ZoneId!]));
  }

  /** A replacement this execution already launched (a retried launch must not launch twice). */
  async replacements(executionId: string): Promise<string[]> {
    const out = await this.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${SWAP_TAG}`, Values: [executionId] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
    );
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
  }

  async launch(plan: SwapPlan, candidate: Candidate): Promise<string> {
    const out = await this.ec2.send(
      new RunInstancesCommand({
        MinCount: 1,
        MaxCount: 1,
        LaunchTemplate: plan.launchTemplate,
        InstanceType: candidate.instanceType as never,
        // The group's own subnet in that zone: a launch template usually leaves the network to the group.
        ...(candidate.subnetId ? { SubnetId: candidate.subnetId } : { Placement: { AvailabilityZone: candidate.azName } }),
        InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } },
        // EC2 deduplicates a retried launch by token (moto does not; the tag lookup covers both).
        ClientToken: createHash('sha256').update(`${plan.executionId}#${candidate.key}`).digest('hex').slice(0, 64),
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: SWAP_TAG, Value: plan.executionId },
              { Key: 'fleetwarden:replaces', Value: plan.oldInstanceId ?? '' },
              { Key: 'ManagedBy', Value: 'fleetwarden' },
            ],
          },
        ],
      }),
    );
    return out.Instances![0]!.InstanceId!;
  }

  async instanceState(instanceId: string): Promise<string | undefined> {
    try {
      const out = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
    } catch (error) {
      if ((error as Error).name === 'InvalidInstanceID.NotFound') return undefined;
      throw error;
    }
  }

  async terminate(instanceId: string): Promise<void> {
    const state = await this.instanceState(instanceId);
    if (!state || state === 'terminated' || state === 'shutting-down') return; // already gone: done
    await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  }

  async observe(plan: SwapPlan): Promise<SwapObservation> {
    const group = await this.group(plan.group);
    const lock = await this.locks?.held(plan.lock.id);
    return {
      members: new Map((group?.instances ?? []).map((i) => [i.instanceId, i.lifecycleState])),
      maxSize: group?.max ?? plan.original.max,
      desired: group?.desired ?? plan.original.desired,
      suspended: group?.suspended ?? [],
      replacements: await this.replacements(plan.executionId),
      oldState: plan.oldInstanceId ? await this.instanceState(plan.oldInstanceId) : undefined,
      lockOwner: lock?.owner,
    };
  }

  async apply(plan: SwapPlan, action: CompensationAction): Promise<void> {
    const AutoScalingGroupName = plan.group;
    switch (action.kind) {
      case 'terminate-replacement-in-group':
        // Detach is refused for an instance that is not InService yet; this removes it either way.
        await this.asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: action.instanceId, ShouldDecrementDesiredCapacity: true }));
        return;
      case 'detach-replacement':
        await this.asg.send(new DetachInstancesCommand({ AutoScalingGroupName, InstanceIds: [action.instanceId], ShouldDecrementDesiredCapacity: true }));
        return;
      case 'terminate-replacement':
      case 'terminate-detached-old':
        return this.terminate(action.instanceId);
      case 'reattach-old':
        await this.asg.send(new AttachInstancesCommand({ AutoScalingGroupName, InstanceIds: [action.instanceId] }));
        return;
      case 'restore-desired':
        await this.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName, DesiredCapacity: action.desired, HonorCooldown: false }));
        return;
      case 'restore-max':
        await this.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName, MaxSize: action.maxSize }));
        return;
      case 'resume-processes':
        await this.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName, ScalingProcesses: action.processes }));
        return;
      case 'wait-for-old-detached':
        throw new Error(`${action.instanceId} is still detaching: a rollback waits for it, it does not apply the wait`);
      case 'release-lock':
        if (!this.locks) throw new Error(`release-lock of ${plan.lock.id}: this reader has no lock store`);
        // Not ours (any more): left alone.
        await this.locks.release(plan.lock.id, plan.executionId);
    }
  }
}
