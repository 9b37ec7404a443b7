import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIRCUIT_BREAKER_METRIC } from '../../functions/enforcement/steps';
import { CLEANUP_CIRCUIT_BREAKER_METRIC } from '../../functions/waste/steps';
import { buildApp } from '../../lib/app';
import { ENTRY_METADATA_KEY, METRICS_NAMESPACE } from '../../lib/constructs/fleet-function';
import { longestScheduleGap } from '../../lib/constructs/operations';
import { PROJECT_ROOT } from '../../lib/paths';
import { commitAll } from '../../local/git';

type Resource = { Type: string; Properties: Record<string, any>; Metadata?: Record<string, unknown> };

const HOME = '123456789012';
/** Every optional capability on: a cluster (node drains, swap nodes) and a group with drift repair. */
const everything = (changes: Record<string, unknown> = {}) => ({
  homeRegion: 'us-east-1',
  regions: ['us-east-1'],
  accounts: [{ id: HOME, name: 'home', environment: 'PROD' }],
  kubernetes: { clusters: [{ name: 'prod-eks', region: 'us-east-1' }] },
  swaps: { groups: [{ name: 'web', driftRepair: true }] },
  ...changes,
});

const synth = (config: Record<string, unknown>): Template => {
  const { app } = buildApp({ skipBundling: true, nag: false, config });
  return Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);
};

let template: Template;
beforeAll(() => {
  template = synth(everything());
});

const resources = (t: Template, type: string): [string, Resource][] => Object.entries(t.findResources(type)) as [string, Resource][];
const alarms = (t: Template) => resources(t, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
const topicOf = (t: Template) => resources(t, 'AWS::SNS::Topic').map(([id]) => id);

/** The logical id a reference in the template points at ({ Ref } or { Fn::GetAtt }). */
function referenced(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    if ('Ref' in value) return (value as { Ref: string }).Ref;
    if ('Fn::GetAtt' in value) return (value as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  }
  return undefined;
}

/**
 * Every queue a message ends in when nothing could deliver or process it: the redrive target of a
 * queue, the dead-letter queue of a rule target, the failure destination of an asynchronous
 * invocation or of a stream's event source.
 */
function deadLetterQueues(t: Template): Set<string> {
  const found = new Set<string>();
  for (const [, queue] of resources(t, 'AWS::SQS::Queue')) {
    const target = referenced(queue.Properties.RedrivePolicy?.deadLetterTargetArn);
    if (target) found.add(target);
  }
  for (const [, rule] of resources(t, 'AWS::Events::Rule')) {
    for (const target of rule.Properties.Targets ?? []) {
      const dlq = referenced(target.DeadLetterConfig?.Arn);
      if (dlq) found.add(dlq);
    }
  }
  for (const type of ['AWS::Lambda::EventInvokeConfig', 'AWS::Lambda::EventSourceMapping']) {
    for (const [, config] of resources(t, type)) {
      const destination = referenced(config.Properties.DestinationConfig?.OnFailure?.Destination);
      if (destination) found.add(destination);
    }
  }
  return found;
}

/**
 * The dashboard body as JSON, each reference to a resource written as its logical id (a function
 * name, a queue name, a state machine ARN, a log group).
 */
function dashboard(t: Template, idPrefix = ''): { widgets: { type: string; properties: Record<string, any> }[] } {
  const [[, board]] = resources(t, 'AWS::CloudWatch::Dashboard').filter(([id]) => id.startsWith(idPrefix)) as [[string, Resource]];
  const body = board.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] };
  const text = body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : (referenced(part) ?? JSON.stringify(part)))).join('');
  return JSON.parse(text);
}

/** The metrics a dashboard graph draws: [namespace, name, ...dimension name/value pairs]. */
function graphedMetrics(t: Template, idPrefix = ''): { namespace: string; name: string; dimensions: Record<string, string> }[] {
  return dashboard(t, idPrefix)
    .widgets.filter((w) => w.type === 'metric')
    .flatMap((w) => (w.properties.metrics ?? []) as unknown[][])
    .filter((m) => typeof m[0] === 'string')
    .map((m) => {
      const parts = m.filter((p): p is string => typeof p === 'string');
      const [namespace, name, ...pairs] = parts;
      const dimensions: Record<string, string> = {};
      for (let i = 0; i + 1 < pairs.length; i += 2) dimensions[pairs[i]!] = pairs[i + 1]!;
      return { namespace: namespace!, name: name!, dimensions };
    });
}

/** The functions of the stack by the Powertools service name they emit metrics under, with their handler entry. */
function functionsByService(t: Template): Map<string, { id: string; entry: string }> {
  return new Map(
    resources(t, 'AWS::Lambda::Function').map(([id, fn]) => [fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string, { id, entry: String(fn.Metadata?.[ENTRY_METADATA_KEY]) }]),
  );
}

/** The source a function's bundle is built from: its entry and every module it imports from the project, transitively. */
function bundledSource(entry: string): string {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:from|import) '(\.[^']+)'/g)) {
      const base = path.resolve(path.dirname(file), specifier!);
      const resolved = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => existsSync(candidate));
      if (resolved) visit(resolved);
    }
  };
  visit(path.join(PROJECT_ROOT, entry));
  return [...seen].map((file) => readFileSync(file, 'utf8')).join('\n');
}

/** The runtime source (not tests): metric names and log messages the functions really write. */
function runtimeSource(): string {
  const read = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? read(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [readFileSync(path.join(dir, e.name), 'utf8')] : []));
  return read(path.join(PROJECT_ROOT, 'functions')).join('\n');
}

describe('alarms', () => {
  it('should alarm on any message in every dead-letter queue, to the notification topic', () => {
    const dlqs = deadLetterQueues(template);
    // At least the async DLQ of rule targets and the drift cycle, and the DLQs of the interruption, enforcement and node drain queues.
    expect(dlqs.size).toBeGreaterThanOrEqual(4);
    const [topic] = topicOf(template);
    const watched = alarms(template).filter(
      (a) =>
        a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
        a.Threshold === 1 &&
        a.ComparisonOperator === 'GreaterThanOrEqualToThreshold' &&
        a.EvaluationPeriods === 1 &&
        a.AlarmActions?.some((action: unknown) => referenced(action) === topic),
    );
    const queuesWatched = new Set(watched.map((a) => referenced(a.Dimensions.find((d: { Name: string }) => d.Name === 'QueueName').Value)));
    expect(queuesWatched).toEqual(dlqs);
    expect(watched).toHaveLength(dlqs.size);
  });

  it('should alarm on a failed and on a timed-out execution of each state machine, to the notification topic', () => {
    const [topic] = topicOf(template);
    const machines = resources(template, 'AWS::StepFunctions::StateMachine').map(([id]) => id);
    expect(machines.length).toBeGreaterThanOrEqual(6);
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      const alarmed = alarms(template)
        .filter((a) => a.MetricName === metric && a.Namespace === 'AWS/States' && a.Threshold === 1 && a.AlarmActions?.some((action: unknown) => referenced(action) === topic))
        .map((a) => referenced(a.Dimensions[0].Value));
      expect(alarmed.sort(), metric).toEqual([...machines].sort());
    }
  });

  it('should alarm when either circuit breaker trips, on the metric and service dimension of the step that emits it', () => {
    const services = functionsByService(template);
    for (const [metric, entry] of [
      [CIRCUIT_BREAKER_METRIC, 'functions/enforcement/steps/handler.ts'],
      [CLEANUP_CIRCUIT_BREAKER_METRIC, 'functions/waste/steps/handler.ts'],
    ]) {
      const [alarm, ...others] = alarms(template).filter((a) => a.MetricName === metric);
      expect(others, metric).toEqual([]);
      expect(alarm).toMatchObject({ Namespace: METRICS_NAMESPACE, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
      expect(alarm!.Dimensions).toHaveLength(1);
      expect(alarm!.Dimensions[0].Name).toBe('service');
      expect(services.get(alarm!.Dimensions[0].Value)?.entry).toBe(entry);
    }
  });

  it('should alarm when no ledger digest succeeded for twice its schedule, counting no runs at all as stale', () => {
    const [digest] = resources(template, 'AWS::StepFunctions::StateMachine').find(([, m]) => m.Properties.StateMachineName === 'fleetwarden-ledger-digest')!;
    const hourly = alarms(template).find((a) => a.MetricName === 'ExecutionsSucceeded');
    expect(hourly).toMatchObject({ Namespace: 'AWS/States', Statistic: 'Sum', Period: 2 * 3600, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching' });
    expect(referenced(hourly!.Dimensions[0].Value)).toBe(digest);
    expect(hourly!.AlarmDescription).toContain('fleetwarden ledger verify');

    const sixHourly = alarms(synth(everything({ ledger: { digestSchedule: 'cron(15 */6 * * ? *)' } }))).find((a) => a.MetricName === 'ExecutionsSucceeded');
    expect(sixHourly!.Period).toBe(12 * 3600);
  });

  it('should refuse to synthesize a digest schedule whose interval cannot be derived, or that no alarm can look back over', () => {
    expect(() => synth(everything({ ledger: { digestSchedule: 'cron(0 0 L * ? *)' } }))).toThrow(/ledger\.digestSchedule "cron\(0 0 L \* \? \*\)": "L" .* not supported/);
    expect(() => synth(everything({ ledger: { digestSchedule: 'every hour' } }))).toThrow(/ledger\.digestSchedule "every hour": not a rate\(\.\.\.\) or cron\(\.\.\.\)/);
    expect(() => synth(everything({ ledger: { digestSchedule: 'rate(4 days)' } }))).toThrow(/twice its longest gap is 8 days, longer than the 7 days/);
  });

  it('should send every alarm of the stack to the notification topic, named as a sentence and saying what to do', () => {
    const [topic] = topicOf(template);
    const all = alarms(template);
    const machines = resources(template, 'AWS::StepFunctions::StateMachine').length;
    // A dead-letter alarm per DLQ, a failed and a timed-out alarm per workflow, two circuit breakers, the stale digest, the daily ledger verification.
    expect(all.length).toBe(deadLetterQueues(template).size + 2 * machines + 2 + 1 + 1);
    for (const alarm of all) {
      expect(alarm.AlarmActions.map(referenced)).toEqual([topic]);
      expect(alarm.AlarmName).toMatch(/^Fleetwarden: [a-z]/);
      expect(alarm.AlarmDescription.length).toBeGreaterThan(60);
    }
    expect(new Set(all.map((a) => a.AlarmName)).size).toBe(all.length);
  });
});

describe('the longest gap of a schedule', () => {
  it('should read rate expressions in minutes, hours and days', () => {
    expect(longestScheduleGap('rate(1 hour)', 'k').toMinutes()).toBe(60);
    expect(longestScheduleGap('rate(15 minutes)', 'k').toMinutes()).toBe(15);
    expect(longestScheduleGap('rate(2 days)', 'k').toMinutes()).toBe(2 * 24 * 60);
  });

  it('should find the longest gap of a cron expression across weekends and month ends', () => {
    expect(longestScheduleGap('cron(0/15 * * * ? *)', 'k').toMinutes()).toBe(15);
    expect(longestScheduleGap('cron(30 2,14 * * ? *)', 'k').toMinutes()).toBe(12 * 60);
    // Friday 09:00 to Monday 09:00.
    expect(longestScheduleGap('cron(0 9 ? * MON-FRI *)', 'k').toMinutes()).toBe(3 * 24 * 60);
    // Odd days of the month: the 29th of a 30-day month to the 1st of the next.
    expect(longestScheduleGap('cron(0 12 1/2 * ? *)', 'k').toMinutes()).toBe(2 * 24 * 60);
  });

  it('should refuse what it cannot derive, naming the setting', () => {
    expect(() => longestScheduleGap('cron(0 9 ? * 2#1 *)', 'ledger.digestSchedule')).toThrow(/^ledger\.digestSchedule "cron\(0 9 \? \* 2#1 \*\)"/);
    expect(() => longestScheduleGap('cron(0 9 * * ? 2030)', 'k')).toThrow(/every year/);
    expect(() => longestScheduleGap('cron(0 9 * * MON *)', 'k')).toThrow(/exactly one of day-of-month and day-of-week must be \?/);
    expect(() => longestScheduleGap('cron(0 9 31 2 ? *)', 'k')).toThrow(/less than twice a year/);
  });
});

describe('the dashboard', () => {
  it('should be named in the stack outputs', () => {
    const dashboards = resources(template, 'AWS::CloudWatch::Dashboard').map(([id]) => id);
    expect(dashboards).toHaveLength(1);
    expect(template.toJSON().Outputs.DashboardName.Value).toEqual({ Ref: dashboards[0] });
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'Fleetwarden-us-east-1' });
  });

  it('should graph the errors and throttles of every function of the stack', () => {
    const graphed = graphedMetrics(template).filter((m) => m.namespace === 'AWS/Lambda');
    const functions = resources(template, 'AWS::Lambda::Function').map(([id]) => id);
    expect(functions.length).toBeGreaterThanOrEqual(11);
    for (const name of ['Errors', 'Throttles']) {
      expect(graphed.filter((m) => m.name === name).map((m) => m.dimensions.FunctionName).sort(), name).toEqual([...functions].sort());
    }
  });

  it('should graph the depth of every dead-letter queue', () => {
    const graphed = graphedMetrics(template)
      .filter((m) => m.name === 'ApproximateNumberOfMessagesVisible')
      .map((m) => m.dimensions.QueueName);
    expect(new Set(graphed)).toEqual(deadLetterQueues(template));
  });

  it('should graph failed, timed-out and aborted executions of every state machine', () => {
    const machines = resources(template, 'AWS::StepFunctions::StateMachine').map(([id]) => id).sort();
    const graphed = graphedMetrics(template).filter((m) => m.namespace === 'AWS/States');
    for (const name of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted']) {
      expect([...new Set(graphed.filter((m) => m.name === name).map((m) => m.dimensions.StateMachineArn))].sort(), name).toEqual(machines);
    }
  });

  it("should draw only Fleetwarden metrics a function emits, under that function's service dimension", () => {
    const services = functionsByService(template);
    const own = graphedMetrics(template).filter((m) => m.namespace === METRICS_NAMESPACE);
    expect(own.length).toBeGreaterThan(30);
    for (const metric of own) {
      const emitter = services.get(metric.dimensions.service!);
      expect(emitter, `${metric.name} under ${metric.dimensions.service}`).toBeDefined();
      const named = new RegExp(`['"]${metric.name}['"]|[{,]\\s*${metric.name}:`);
      expect(named.test(bundledSource(emitter!.entry)), `${metric.name} is written by ${emitter!.entry} or a module it imports`).toBe(true);
    }
    // Graphed by every detail-type the ingest emits it with.
    expect(own.filter((m) => m.name === 'InterruptionEvents').every((m) => m.dimensions.DetailType)).toBe(true);
  });

  it('should query the log lines the interruption ingest and the ledger digest write, in their own log groups', () => {
    const source = runtimeSource();
    const queries = dashboard(template)
      .widgets.filter((w) => w.type === 'log')
      .map((w) => w.properties.query as string);
    const [interruptions, digests] = queries;
    expect(interruptions).toMatch(/^SOURCE 'InterruptionsInterruptionIngestLogs[0-9A-F]+' \| filter message = "interruption ingested"/);
    expect(interruptions).toContain('stats count(*) as interruptions by environment, pool, kind');
    expect(digests).toMatch(/^SOURCE 'LedgerLedgerDigestLogs[0-9A-F]+' \| filter message = "ledger digest planned"/);
    expect(source.includes("logger.info('interruption ingested', { eventId: event.eventId, kind: event.kind, outcome })"), 'the ingest log line').toBe(true);
    expect(source.includes("logger.info('ledger digest planned', { chain: plan.chain, hasNew: plan.hasNew, toSeq: plan.toSeq })"), 'the digest log line').toBe(true);
  });

  it('should show every alarm of the stack in its alarm status widget', () => {
    const status = dashboard(template).widgets.find((w) => w.type === 'alarm' && Array.isArray(w.properties.alarms))!;
    expect(status.properties.alarms.sort()).toEqual(resources(template, 'AWS::CloudWatch::Alarm').map(([id]) => id).sort());
  });

  it('should say instead of graphing when no cluster and no drift repair are configured', () => {
    const plain = synth({ homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: HOME, name: 'home', environment: 'PROD' }] });
    const texts = dashboard(plain)
      .widgets.filter((w) => w.type === 'text')
      .map((w) => w.properties.markdown as string);
    expect(texts.some((t) => t.startsWith('### Node drains'))).toBe(true);
    expect(texts.some((t) => t.startsWith('### Node drift'))).toBe(true);
    expect(texts.some((t) => t.startsWith('### Workload drift'))).toBe(true);
    expect(graphedMetrics(plain).some((m) => m.name === 'DrainDuration' || m.name === 'DriftedNodes' || m.name.startsWith('Workload'))).toBe(false);
    // The node drain queue's DLQ is gone with the clusters, and so is its line.
    expect(deadLetterQueues(plain).size).toBe(deadLetterQueues(template).size - 1);
    expect(graphedMetrics(plain).filter((m) => m.name === 'ApproximateNumberOfMessagesVisible')).toHaveLength(deadLetterQueues(plain).size);
  });
});

describe('the workload drift widget', () => {
  let checkout: string;
  let manifests: string;
  beforeAll(() => {
    // A checkout holding the example manifests, committed: a desired state is deployed.
    checkout = mkdtempSync(path.join(tmpdir(), 'fleetwarden-operations-'));
    manifests = path.join(checkout, 'manifests', 'clusters');
    cpSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'desired-state', 'clusters'), manifests, { recursive: true });
    commitAll(checkout, 'storefront');
  });
  afterAll(() => rmSync(checkout, { recursive: true, force: true }));

  it("should graph the drifts the detector emits under its service, and the rollback workflow's outcomes", () => {
    // Arrange: a stack with a desired state deployed.
    const config = everything({ kubernetes: { clusters: [{ name: 'prod-eks', region: 'us-east-1' }], desiredState: { path: manifests } } });
    const { app, stack } = buildApp({ skipBundling: true, nag: false, config });
    expect(stack.workloads).toBeDefined();

    // Act
    const t = Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);

    // Assess
    const [detector] = resources(t, 'AWS::Lambda::Function').find(([, fn]) => fn.Metadata?.[ENTRY_METADATA_KEY] === 'functions/workloads/detect/handler.ts')!;
    const service = [...functionsByService(t)].find(([, f]) => f.id === detector)![0];
    const widget = dashboard(t).widgets.find((w) => String(w.properties.title).includes('workload drifts'))!;
    const metrics = (widget.properties.metrics as unknown[][]).map((m) => m.filter((p): p is string => typeof p === 'string'));
    expect(metrics.slice(0, 3)).toEqual(['WorkloadDrifts', 'WorkloadDriftsOpened', 'WorkloadRollbacksStarted'].map((name) => [METRICS_NAMESPACE, name, 'service', service]));
    const [machine] = resources(t, 'AWS::StepFunctions::StateMachine').find(([, m]) => m.Properties.StateMachineName === 'fleetwarden-workload-rollback')!;
    expect(metrics.slice(3)).toEqual(['ExecutionsSucceeded', 'ExecutionsFailed'].map((name) => ['AWS/States', name, 'StateMachineArn', machine]));
    for (const name of ['WorkloadDrifts', 'WorkloadDriftsOpened', 'WorkloadRollbacksStarted']) {
      expect(new RegExp(`['"]${name}['"]`).test(bundledSource('functions/workloads/detect/handler.ts')), `${name} is written by the detector`).toBe(true);
    }
    // The rollback workflow's timeout alarm says what becomes of a timed-out rollback.
    const timedOut = alarms(t).find((a) => a.AlarmName === 'Fleetwarden: an execution of fleetwarden-workload-rollback timed out' && a.AlarmDescription.includes('never starts it again'));
    expect(timedOut?.AlarmDescription).toContain('fleetwarden status --stack Fleetwarden');
  });
});
