import { buildApp, STACK_NAME } from '../lib/app';

/**
 * The synthesized CloudFormation template, read the way `cdk synth` writes it, and a resolver
 * for the intrinsic functions CDK emits (Ref, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split,
 * Fn::Sub and the pseudo parameters) against the identities of locally provisioned resources.
 */
export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Metadata?: Record<string, unknown>;
  Outputs?: Record<string, { Value: unknown }>;
}

/** Synthesizes the stack in-process, with esbuild bundling skipped (only the template is needed). */
export function synthTemplate(config?: unknown): CfnTemplate {
  const { app } = buildApp({ config, skipBundling: true, nag: false });
  return app.synth().getStackByName(STACK_NAME).template as CfnTemplate;
}

export interface Identity {
  /** What `Ref` returns. */
  ref: string;
  /** What `Fn::GetAtt` returns, by attribute name. */
  attrs: Record<string, string>;
}

export interface Pseudo {
  region: string;
  accountId: string;
}

export class Resolver {
  constructor(
    private readonly identities: Map<string, Identity>,
    private readonly pseudo: Pseudo,
  ) {}

  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1) {
      const [key] = keys as [string];
      const arg = record[key];
      switch (key) {
        case 'Ref':
          return this.ref(arg as string);
        case 'Fn::GetAtt': {
          const [logicalId, attr] = Array.isArray(arg) ? (arg as [string, string]) : (arg as string).split('.');
          return this.attr(logicalId!, attr!);
        }
        case 'Fn::Join': {
          const [separator, parts] = arg as [string, unknown[]];
          return (this.resolve(parts) as unknown[]).map(String).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [number | string, unknown];
          return (this.resolve(list) as unknown[])[Number(index)];
        }
        case 'Fn::Split': {
          const [separator, source] = arg as [string, unknown];
          return String(this.resolve(source)).split(separator);
        }
        case 'Fn::Sub': {
          const [text, vars] = typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
          return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
            if (name in vars) return String(this.resolve(vars[name]));
            return name.includes('.') ? this.attr(...(name.split('.') as [string, string])) : this.ref(name);
          });
        }
      }
      if (key.startsWith('Fn::')) throw new Error(`unsupported intrinsic ${key}`);
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, this.resolve(v)]));
  }

  ref(logicalId: string): string {
    switch (logicalId) {
      case 'AWS::Region':
        return this.pseudo.region;
      case 'AWS::AccountId':
        return this.pseudo.accountId;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return STACK_NAME;
      case 'AWS::NoValue':
        return '';
    }
    const identity = this.identities.get(logicalId);
    if (!identity) throw new Error(`Ref to unknown resource ${logicalId}`);
    return identity.ref;
  }

  attr(logicalId: string, name: string): string {
    const value = this.identities.get(logicalId)?.attrs[name];
    if (value === undefined) throw new Error(`Fn::GetAtt ${logicalId}.${name} is not known locally`);
    return value;
  }
}
