import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from './config';
import { FleetwardenStack } from './fleetwarden-stack';
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

function projectContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

/** Builds the app exactly as `cdk synth` does; tests and the local harness call this too. */
export function buildApp(options: BuildOptions = {}): { app: App; stack: FleetwardenStack } {
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
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}
