/**
 * `npm run demo`: Fleetwarden's main job on the local emulators. Boots moto, provisions the
 * synthesized stack into it (from the template), drives Fleetwarden, prints a timeline and ends
 * with a ledger verification. Each capability adds its steps to `steps` below.
 */
import './quiet-runtime';
import { DynamoLedger } from '../functions/ledger/store';
import { documentClient } from '../functions/shared/aws';
import { formatVerification, runVerify } from '../functions/ledger/cli';
import { motoEnvironment, startMoto } from '../local/moto';
import { provision } from '../local/provision';
import { pumpStream } from '../local/stream-source';
import { synthTemplate } from '../local/template';
import { archiveSteps } from './demo/archive';
import { driftSteps } from './demo/drift';
import { enforcementSteps } from './demo/enforcement';
import { interruptionSteps } from './demo/interruptions';
import { kubernetesSteps } from './demo/kubernetes';
import { ledgerSteps } from './demo/ledger';
import { swapSteps } from './demo/swaps';
import { wasteSteps } from './demo/waste';
import { workloadSteps } from './demo/workloads';
import { type DemoContext, Timeline } from './demo/timeline';

/** The demo's chapters, in order; later capabilities append theirs. */
const steps: ((ctx: DemoContext) => Promise<void>)[] = [ledgerSteps, interruptionSteps, kubernetesSteps, swapSteps, driftSteps, workloadSteps, enforcementSteps, wasteSteps, archiveSteps];

async function main(): Promise<number> {
  const timeline = new Timeline();
  timeline.section('Emulators');
  const moto = await startMoto();
  Object.assign(process.env, motoEnvironment(moto.endpoint), {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
  });
  timeline.step('moto', `AWS APIs emulated at ${moto.endpoint}`);
  try {
    timeline.section('Deploy (locally)');
    const template = synthTemplate();
    timeline.step('cdk synth', `stack Fleetwarden: ${Object.keys(template.Resources).length} resources, config from cdk.json (dry-run on)`);
    const stack = await provision(template, { prefix: 'demo' });
    const byType = new Map<string, number>();
    for (const r of stack.created) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
    timeline.step('provision', `created in moto from the template: ${[...byType].map(([t, n]) => `${n} ${t.replace('AWS::', '')}`).join(', ')}`);
    timeline.detail(`not run by moto, run locally instead: ${stack.functions.size} Lambda function(s), ${stack.stateMachines.size} state machine(s)`);

    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    const ctx: DemoContext = { stack, ledger, timeline };
    for (const step of steps) await step(ctx);

    timeline.section('Ledger verification');
    // The entries the last chapters appended are archived first, as the stream would within minutes.
    await pumpStream(stack, 'StateStoreLedgerTable', 'LedgerLedgerArchive');
    const report = await runVerify({
      chain: 'fleet',
      table: stack.ref('StateStoreLedgerTable'),
      bucket: stack.ref('LedgerArchive'),
      'signing-key': stack.attr('LedgerDigestSigningKey', 'Arn'),
      json: false,
    });
    timeline.step('fleetwarden ledger', 'verify --chain fleet');
    for (const line of formatVerification(report).split('\n')) (report.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(line);
    return report.ok ? 0 : 1;
  } finally {
    await moto.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
