import { AutoScalingClient, type AutoScalingGroup, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, DescribeLaunchTemplateVersionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsClient } from '../shared/aws';
import { RetryableError } from '../shared/errors';
import { DO_NOT_DISRUPT_TAG } from '../shared/groups';
import { type GroupDriftFacts, type GroupSpec, type InstanceFacts, type ResolvedTemplate } from './nodes';

/** The tag EC2 puts on every instance launched from a launch template: the concrete version number. */
export const LAUNCHED_VERSION_TAG = 'aws:ec2launchtemplate:version';

/** Reads what node drift is decided from. Read-only: Describe* calls only. */
export interface DriftFactsSource {
  /** The group's spec and instances, or undefined when there is no such group. */
  group(name: string): Promise<GroupDriftFacts | undefined>;
}

type TemplateSpec = { LaunchTemplateId?: string; LaunchTemplateName?: string; Version?: string };

export class AwsDriftFacts implements DriftFactsSource {
  constructor(private readonly region: string) {}

  private get asg() {
    return awsClient(AutoScalingClient, { region: this.region });
  }
  private get ec2() {
    return awsClient(EC2Client, { region: this.region });
  }

  async group(name: string): Promise<GroupDriftFacts | undefined> {
    const out = await this.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
    const g = out.AutoScalingGroups?.find((x) => x.AutoScalingGroupName === name);
    if (!g) return undefined;
    const spec = await this.spec(g);
    const inService = (g.Instances ?? []).filter((i) => i.LifecycleState === 'InService');
    const described = await this.instances(inService.map((i) => i.InstanceId!));
    const instances: InstanceFacts[] = (g.Instances ?? []).map((i) => {
      const d = described.get(i.InstanceId!);
      const template = i.LaunchTemplate?.LaunchTemplateId ? { launchTemplateId: i.LaunchTemplate.LaunchTemplateId, version: i.LaunchTemplate.Version } : undefined;
      return {
        instanceId: i.InstanceId!,
        lifecycleState: i.LifecycleState ?? 'Unknown',
        instanceType: d?.instanceType || i.InstanceType || '',
        imageId: d?.imageId,
        launchTemplate: template,
        launchedVersion: d?.tags[LAUNCHED_VERSION_TAG],
        launchConfiguration: i.LaunchConfigurationName,
        doNotDisrupt: d?.tags[DO_NOT_DISRUPT_TAG] === 'true',
      };
    });
    return { name, spec, instances };
  }

  private async spec(g: AutoScalingGroup): Promise<GroupSpec> {
    const mixed = g.MixedInstancesPolicy?.LaunchTemplate;
    const main = g.LaunchTemplate ?? mixed?.LaunchTemplateSpecification;
    if (main) {
      const template = await this.resolve(main);
      const overrides: { instanceType: string; template: ResolvedTemplate }[] = [];
      for (const o of mixed?.Overrides ?? []) {
        if (o.InstanceType && o.LaunchTemplateSpecification) overrides.push({ instanceType: o.InstanceType, template: await this.resolve(o.LaunchTemplateSpecification) });
      }
      return { kind: 'launch-template', template, overrides };
    }
    if (g.LaunchConfigurationName) return { kind: 'launch-configuration', name: g.LaunchConfigurationName };
    return { kind: 'none' };
  }

  /** `$Latest`, `$Default` or a number, resolved to the concrete version and its AMI (SSM parameters resolved too). */
  private async resolve(spec: TemplateSpec): Promise<ResolvedTemplate> {
    const configured = spec.Version ?? '$Default';
    const out = await this.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({
        ...(spec.LaunchTemplateId ? { LaunchTemplateId: spec.LaunchTemplateId } : { LaunchTemplateName: spec.LaunchTemplateName }),
        Versions: [configured],
        ResolveAlias: true,
      }),
    );
    const version = out.LaunchTemplateVersions?.[0];
    if (!version?.VersionNumber || !version.LaunchTemplateId) {
      throw new RetryableError(`launch template ${spec.LaunchTemplateId ?? spec.LaunchTemplateName} has no version ${configured}`);
    }
    return { launchTemplateId: version.LaunchTemplateId, configured, version: version.VersionNumber, imageId: version.LaunchTemplateData?.ImageId || undefined };
  }

  private async instances(ids: string[]): Promise<Map<string, { imageId?: string; instanceType?: string; tags: Record<string, string> }>> {
    const found = new Map<string, { imageId?: string; instanceType?: string; tags: Record<string, string> }>();
    // DescribeInstances takes at most 1000 ids per call.
    for (let i = 0; i < ids.length; i += 1000) {
      let NextToken: string | undefined;
      do {
        const out = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids.slice(i, i + 1000), NextToken }));
        for (const instance of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
          found.set(instance.InstanceId!, { imageId: instance.ImageId, instanceType: instance.InstanceType, tags: Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key!, t.Value ?? ''])) });
        }
        NextToken = out.NextToken;
      } while (NextToken);
    }
    return found;
  }
}
