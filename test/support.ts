import { type LocalStack, provision } from '../local/provision';
import { type CfnTemplate, synthTemplate } from '../local/template';

let template: CfnTemplate | undefined;

/** The stack's template, synthesized once per test file (bundling skipped). */
export function stackTemplate(): CfnTemplate {
  template ??= synthTemplate();
  return template;
}

/** A fresh copy of the stack's resources in moto, under its own name prefix. */
export async function freshStack(): Promise<LocalStack> {
  return provision(stackTemplate());
}
