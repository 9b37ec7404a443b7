import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { z } from 'zod';
import { BaseEnvSchema, type FunctionEnvInput } from '../../functions/shared/env';
import type { FleetwardenConfig } from '../config';
import { acknowledge } from '../nag';
import { PROJECT_ROOT } from '../paths';


/**
 * Packages every bundle replaces by a smaller module of the project (see `bundling.esbuildArgs`;
 * each module says what changes). Paths are relative to the project root.
 */
export const BUNDLE_ALIASES: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-node': 'functions/shared/lambda-credentials.ts',
  semver: 'functions/shared/xray-semver.ts',
};

/** The CloudWatch namespace of every function's Powertools metrics (EMF). */
export const METRICS_NAMESPACE = 'Fleetwarden';

/** Metadata key under which each function records its TypeScript entry (read by the local harness). */
export const ENTRY_METADATA_KEY = 'fleetwarden:entry';

export interface FleetFunctionProps<S extends z.ZodObject> {
  /** Handler module, relative to the project root, e.g. `functions/ledger/digest/handler.ts`. */
  entry: string;
  description: string;
  /** The function's env schema; `environment` is typed from it and checked against it at synth. */
  envSchema: S;
  environment: FunctionEnvInput<S>;
  config: FleetwardenConfig;
  timeout?: Duration;
  memorySize?: number;
  /** A fixed IAM role name, for roles that other accounts trust by ARN (default: generated). */
  roleName?: string;
}

/**
 * Every Fleetwarden function with the same defaults: nodejs22.x on ARM64, bundled locally by
 * esbuild (no Docker) as minified ESM with source maps, JSON logs into an explicit log group,
 * X-Ray tracing, and an explicit role that starts with nothing but its own log group.
 * Permissions are added with `allow()` (explicit actions, never a wildcard).
 */
export class FleetFunction<S extends z.ZodObject = z.ZodObject> extends Construct {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** Powertools' `service` dimension on every metric the function emits. */
  readonly serviceName: string;

  constructor(scope: Construct, id: string, props: FleetFunctionProps<S>) {
    super(scope, id);
    const serviceName = `fleetwarden-${kebab(id)}`;
    this.serviceName = serviceName;
    const environment: Record<string, string> = {
      POWERTOOLS_SERVICE_NAME: serviceName,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      FLEETWARDEN_DRY_RUN: String(props.config.dryRun),
      ...(props.environment as Record<string, string>),
    };
    // One schema, both sides: a key the handler needs but the construct forgot fails synth here.
    const check = BaseEnvSchema.extend(props.envSchema.shape).safeParse(environment);
    if (!check.success) {
      throw new Error(`${this.node.path}: environment does not satisfy its schema: ${check.error.message}`);
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.config.stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      roleName: props.roleName,
      description: `${serviceName}: ${props.description}`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.fn = new NodejsFunction(this, 'Function', {
      entry: path.join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      environment: { ...environment, NODE_OPTIONS: '--enable-source-maps' },
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      projectRoot: PROJECT_ROOT,
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        mainFields: ['module', 'main'],
        // Bundle the AWS SDK too: the deployed code runs the exact SDK version the tests ran
        // against, not whichever copy the runtime happens to ship.
        externalModules: [],
        // Some dependencies still call require(); give the ESM bundle one.
        banner: "import { createRequire as __fwCreateRequire } from 'node:module'; const require = __fwCreateRequire(import.meta.url);",
        forceDockerBundling: false,
        // The SDK's default credential chain is the environment provider alone in the bundles (the
        // only link that answers in Lambda), and semver is the one function X-Ray's SDK v2
        // patcher needs (README, Performance). Relative to the project root, esbuild's working dir.
        esbuildArgs: Object.fromEntries(Object.entries(BUNDLE_ALIASES).map(([from, to]) => [`--alias:${from}`, `./${to}`])),
      },
    });
    this.fn.node.addMetadata(ENTRY_METADATA_KEY, props.entry);
    (this.fn.node.defaultChild as lambda.CfnFunction).addMetadata(ENTRY_METADATA_KEY, props.entry);

    acknowledge(this, 'AwsSolutions-L1', 'The runtime major is pinned to nodejs22.x by decision: tests and tools run on that same major.');
    acknowledge(
      this,
      'AwsSolutions-IAM5',
      'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; the actions stay explicit.',
      ['Resource::*'],
    );
  }

  /** Grants explicit actions on explicit resources; wildcard actions are refused at synth. */
  allow(actions: string[], resources: string[]): void {
    allow(this.role, actions, resources);
  }
}

export function allow(grantee: iam.IGrantable, actions: string[], resources: string[]): void {
  const wildcard = actions.find((action) => action.includes('*'));
  if (wildcard) throw new Error(`wildcard action ${wildcard} refused: list the actions the function needs`);
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
}

function kebab(id: string): string {
  return id.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}
