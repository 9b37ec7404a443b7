import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { verifyChain } from '../../functions/ledger/chain';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { runStateMachine } from '../../local/stepfunctions';
import type { DemoContext } from './timeline';

/** The ledger chapter: what Fleetwarden records, the signed digest workflow, tamper detection. */
export async function ledgerSteps({ stack, ledger, timeline }: DemoContext): Promise<void> {
  timeline.section('Ledger: append-only, hash-chained');
  const deployed = {
    actor: 'cdk-deploy',
    action: 'stack.deployed',
    subject: 'Fleetwarden',
    reason: 'local deployment into the emulators',
    eventId: `deploy-${stack.prefix}`,
    after: { resources: stack.created.length, dryRun: true },
  };
  const deployment = await ledger.append(deployed, { dedupeKey: deployed.eventId });
  timeline.step('ledger', `#${deployment.entry.seq} stack.deployed  hash ${deployment.entry.hash.slice(0, 12)}…`);
  const concurrent = await Promise.all(
    ['use1-az1', 'use1-az2', 'use1-az4'].map((az, i) =>
      new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).append({
        actor: 'demo-writer',
        action: 'demo.concurrent-append',
        subject: `us-east-1/${az}/m5.large`,
        reason: 'three writers append at the same moment',
        eventId: `demo-${i}`,
      }),
    ),
  );
  const conflicts = concurrent.reduce((sum, r) => sum + r.conflicts, 0);
  timeline.step('ledger', `3 concurrent appends -> seq ${concurrent.map((r) => r.entry.seq).sort().join(', ')} (${conflicts} lost races retried, no fork)`);
  const again = await ledger.append(deployed, { dedupeKey: deployed.eventId });
  timeline.step(
    'ledger',
    `stack.deployed delivered again -> ${again.duplicate ? `recognised as #${again.entry.seq}, nothing appended` : `APPENDED AGAIN as #${again.entry.seq}`}`,
  );

  timeline.section('Ledger digest workflow (the synthesized state machine, run locally)');
  const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
  for (const event of run.events.filter((e) => e.type === 'StateEntered')) timeline.step('step functions', event.state!);
  timeline.ok(`${run.status}: ${run.transitions} state transitions, ${run.lambdaInvocations} Lambda invocation, ${run.sdkCalls} SDK calls; digest signed with KMS and stored under S3 Object Lock`);

  timeline.section('Tampering is detected (a scratch chain)');
  const scratch = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), chain: 'scratch' });
  for (let i = 1; i <= 3; i++) {
    await scratch.append({ actor: 'enforcer', action: 'instance.flagged', subject: `i-0000${i}`, reason: 'not authorized', eventId: `scratch-${i}` });
  }
  const items: Record<string, unknown>[] = [];
  for await (const item of scratch.entries()) items.push(item);
  await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: { ...items[1], reason: 'authorized after all' } }));
  timeline.step('raw table access', 'rewrote entry #2 of chain "scratch" (no Fleetwarden role may: no UpdateItem, PutItem only under its own chain)');
  const reread: Record<string, unknown>[] = [];
  for await (const item of scratch.entries()) reread.push(item);
  const report = verifyChain('scratch', reread);
  for (const problem of report.problems) timeline.fail(`seq ${problem.seq}: ${problem.kind} — ${problem.detail}`);
}
