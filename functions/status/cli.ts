import { S3Client } from '@aws-sdk/client-s3';
import { type ExecutionListItem, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { listFlags } from '../enforcement/cli';
import { listPools } from '../interruption/cli';
import { ClusterConfigSchema } from '../kubernetes/cluster-config';
import { DigestArchive } from '../ledger/adapters';
import { showEntries } from '../ledger/show';
import { DEFAULT_CHAIN, DynamoLedger } from '../ledger/store';
import { type AwsClientOptions, awsClient, documentClient } from '../shared/aws';
import { AwsFlags, type CliResult, awsOptions, cliCommand, flagValue, jsonFlag, parseCommandArgs, requireOutput, runCommand, stackOutputs } from '../shared/cli';
import { parseOperatingMode } from '../shared/operating-mode';
import { Progress } from '../shared/progress';
import { listFindings } from '../waste/cli';
import { DynamoDriftStore } from '../workloads/drift-store';
import { type ClusterWorkloadDrifts, type DeadLetterDepth, type Part, type Running, type StatusReport, countWorkloadDrifts, failed, formatStatus, isDriftRepair, needsAttention } from './report';

export const STATUS_USAGE = `usage: fleetwarden status --stack NAME [--region R] [--profile P] [--json]

One screen: what is in dry-run, quarantined pools, swaps and batches under way, open flags and
findings, node drift, open workload drifts per cluster, the last ledger digest and its age, and
dead-letter queue depths.`;

export const StatusArgsSchema = z.strictObject({
  stack: flagValue().min(1, 'needs a value').describe('the Fleetwarden stack (its outputs name everything status reads)'),
  ...AwsFlags,
  json: jsonFlag(),
});
export type StatusArgs = z.infer<typeof StatusArgsSchema>;

/** Reads one part; an error becomes the part's answer, so that one broken read hides nothing else. */
async function part<T>(read: () => Promise<T>): Promise<Part<T>> {
  try {
    return await read();
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

/** Executions of a state machine RUNNING now, every page. */
async function running(stateMachineArn: string, aws: AwsClientOptions): Promise<Running[]> {
  const sfn = awsClient(SFNClient, aws);
  const found: ExecutionListItem[] = [];
  const progress = new Progress(`listing running executions of ${stateMachineArn.split(':').at(-1)}`, 'executions');
  try {
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', nextToken }));
      found.push(...(page.executions ?? []));
      progress.add(page.executions?.length ?? 0);
      nextToken = page.nextToken;
    } while (nextToken);
  } finally {
    progress.done();
  }
  return found.map((e) => ({ name: e.name!, ...(e.startDate ? { startDate: e.startDate.toISOString() } : {}) })).sort((a, b) => (a.startDate ?? '').localeCompare(b.startDate ?? ''));
}

/** Every output named `…DeadLetterQueueUrl`, with the messages waiting in it. */
async function deadLetters(outputs: Record<string, string>, aws: AwsClientOptions): Promise<DeadLetterDepth[]> {
  const sqs = awsClient(SQSClient, aws);
  const queues = Object.entries(outputs).filter(([name]) => name.endsWith('DeadLetterQueueUrl'));
  return Promise.all(
    queues.map(async ([name, url]) => {
      const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }));
      return { queue: name.replace(/Url$/, ''), url, messages: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) };
    }),
  ).then((all) => all.sort((a, b) => a.queue.localeCompare(b.queue)));
}

/** The open workload drifts of each configured cluster (the findings table's open-drift index, one query a cluster). */
async function openWorkloadDrifts(outputs: Record<string, string>, stack: string, aws: AwsClientOptions): Promise<{ clusters: ClusterWorkloadDrifts[] }> {
  const clusters = z.array(ClusterConfigSchema).parse(JSON.parse(requireOutput(outputs, 'KubernetesClusters', stack)));
  const drifts = new DynamoDriftStore(documentClient(aws), requireOutput(outputs, 'FindingsTableName', stack));
  return { clusters: await Promise.all(clusters.map(async ({ name }) => countWorkloadDrifts(name, await drifts.openIn(name)))) };
}

/** Reads every part of the status from the stack's outputs. */
export async function readStatus(args: StatusArgs, now = new Date()): Promise<StatusReport> {
  const aws = awsOptions(args);
  const outputs = await stackOutputs(args.stack, aws);
  const output = (name: string) => requireOutput(outputs, name, args.stack);
  const mode = parseOperatingMode(outputs.OperatingMode);
  const [quarantinedPools, swaps, batches, flags, findings, driftedLast24h, workload, digest, dlq] = await Promise.all([
    part(() => listPools({ table: output('PoolRiskTableName'), quarantined: true, json: false, ...aws, ...(mode ? { 'half-life': mode.quarantine.riskHalfLifeHours } : {}) }, now)),
    part(() => running(output('NodeSwapStateMachineArn'), aws)),
    part(() => running(output('SwapBatchStateMachineArn'), aws)),
    part(async () => {
      const open = await listFlags({ table: output('AuthorizationsTableName'), state: 'open', json: false, ...aws });
      const byState: Record<string, number> = {};
      for (const f of open) byState[f.state] = (byState[f.state] ?? 0) + 1;
      return { open: open.length, byState };
    }),
    part(async () => {
      const open = await listFindings({ table: output('FindingsTableName'), state: 'open', json: false, ...aws });
      return { open: open.length, monthlyUsd: Math.round(open.reduce((sum, f) => sum + f.monthlyUsd, 0) * 100) / 100 };
    }),
    outputs.NodeDriftDetectorName
      ? part(async () => {
          const since = new Date(now.getTime() - 24 * 3_600_000).toISOString();
          return (await showEntries(documentClient(aws), output('LedgerTableName'), DEFAULT_CHAIN, { since, kind: 'node.drifted' }, 10_000)).entries.length;
        })
      : Promise.resolve(undefined),
    // Deployed with a desired state: the detector's output is there.
    outputs.WorkloadDriftDetectorName ? part(() => openWorkloadDrifts(outputs, args.stack, aws)) : Promise.resolve('not deployed' as const),
    part(async () => {
      const pointer = await new DigestArchive(awsClient(S3Client, aws), output('ArchiveBucketName')).pointer(DEFAULT_CHAIN);
      if (!pointer) return null;
      const tip = await new DynamoLedger(documentClient(aws), { tableName: output('LedgerTableName') }).tip();
      return { createdAt: pointer.createdAt, ageSeconds: Math.round((now.getTime() - Date.parse(pointer.createdAt)) / 1000), toSeq: pointer.toSeq, tipSeq: tip?.seq ?? 0 };
    }),
    part(() => deadLetters(outputs, aws)),
  ]);
  // Node drift is repaired by batches named drift-…: what is drifted, and what is being repaired.
  let node: StatusReport['drift']['node'] = { deployed: false };
  if (driftedLast24h !== undefined) node = failed(driftedLast24h) ? driftedLast24h : failed(batches) ? batches : { deployed: true, repairing: batches.filter(isDriftRepair), driftedLast24h };
  const report: Omit<StatusReport, 'attention'> = {
    stack: args.stack,
    region: args.region ?? (await awsClient(SFNClient, aws).config.region()),
    at: now.toISOString(),
    ...(mode ? { mode } : {}),
    quarantinedPools,
    swaps,
    batches,
    flags,
    findings,
    drift: { node, workload },
    digest,
    deadLetters: dlq,
  };
  return { ...report, attention: needsAttention(report) };
}

/** `fleetwarden status`: exit status 1 when something needs attention (dead letters, an unreadable part). */
export const STATUS_COMMAND = cliCommand({
  path: ['status'],
  summary: 'One screen: dry-run, quarantined pools, swaps and batches under way, open flags and findings, node and workload drift, last digest, dead letters.',
  flags: StatusArgsSchema,
  args: (flags) => flags,
  notes: 'Exit status: 0 nothing needs attention, 1 something does (messages in a dead-letter queue, a part that could not be read), 2 bad usage.',
  run: async (args: StatusArgs): Promise<CliResult> => {
    const report = await readStatus(args);
    return { text: args.json ? JSON.stringify(report, null, 2) : formatStatus(report), code: report.attention.length ? 1 : 0 };
  },
});

export const parseStatusArgs = (argv: readonly string[]): StatusArgs => parseCommandArgs(STATUS_COMMAND, argv);
export const runStatusCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(STATUS_COMMAND, argv);
