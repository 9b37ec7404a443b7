import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from './config';
import { FleetwardenStack } from './fleetwarden-stack';
import { FleetwardenMemberStack } from './member-stack';
import { PROJECT_ROOT } from './paths';

export interface BuildOptions {
  /** Overrides the `fleetwarden` context (tests, demo). */
  config?: unknown;
  /** Skip esbuild bundling (template-only synths in tests and the local harness). */
  skipBundling?: boolean;
  outdir?: string;
  /** Run cdk-nag as a synth-time validation plugin (on by default, as in `cdk synth`). */
  nag?: boolean;
}

export const STACK_NAME = 'Fleetwarden';
/** The member-account baseline, deployed into every member account and region. */
export const MEMBER_STACK_NAME = 'FleetwardenMember';

function projectContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

/** Builds the app exactly as `cdk synth` does; tests and the local harness call this too. */
export function buildApp(options: BuildOptions = {}): { app: App; stack: FleetwardenStack; member: FleetwardenMemberStack } {
  const context: Record<string, unknown> = {};
  if (options.skipBundling) context['aws:cdk:bundling-stacks'] = [];
  if (options.config !== undefined) context.fleetwarden = options.config;
  const app = new App({ context, outdir: options.outdir });
  // The CDK CLI passes cdk.json's context in; in-process synths (tests, demo) read it themselves.
  const config = parseConfig(app.node.tryGetContext('fleetwarden') ?? projectContext().fleetwarden);
  const stack = new FleetwardenStack(app, STACK_NAME, {
    config,
    env: { region: config.homeRegion, account: process.env.CDK_DEFAULT_ACCOUNT },
    description: 'Fleetwarden: fleet guardian for EC2 and Kubernetes on AWS',
  });
  // Env-agnostic, so that one template serves every member account and region (StackSet or cdk deploy).
  const member = new FleetwardenMemberStack(app, MEMBER_STACK_NAME, {
    config,
    homeAccount: process.env.CDK_DEFAULT_ACCOUNT,
    description: 'Fleetwarden member baseline: the member role the home roles assume, and forwarding of the handled events to the home account bus',
  });
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, member };
}
