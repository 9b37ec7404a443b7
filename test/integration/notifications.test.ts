import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingHttpHeaders, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClient } from '../../functions/shared/aws';
import { EVENT_SOURCES } from '../../functions/shared/bus';
import { WEBHOOK_NAME_HEADER } from '../../lib/constructs/notifications';
import { PROJECT_ROOT } from '../../lib/paths';
import { ApiDestinationRouter, putSecret } from '../../local/api-destinations';
import { type LocalStack, provision } from '../../local/provision';
import { synthTemplate } from '../../local/template';

/**
 * Webhooks end to end: the stack synthesized with `notifications.webhooks`, provisioned into
 * moto, real events put on Fleetwarden's bus, and the local API-destination router
 * (local/api-destinations.ts) calling a node:http server on 127.0.0.1 the way EventBridge calls
 * the endpoint: after moto matched the rule, with the target's input transformer, the
 * connection's auth header read from Secrets Manager, retries, and the dead-letter queue.
 *
 * Slack's and Teams' URLs are kept in Secrets Manager (`urlSecretName`), here pointing at the
 * local server; the JSON webhooks have https URLs in the config, which the router rewrites to it.
 */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const run = randomUUID().slice(0, 8);
const secret = (name: string) => `fleetwarden-test-${run}/${name}`;
let server: Server;
let port: number;
let received: Received[] = [];
/** Statuses each path answers with, in order (then 200). */
const scripts = new Map<string, number[]>();
let stack: LocalStack;
let router: ApiDestinationRouter;

const cdkConfig = () => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden as Record<string, any>;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ path: req.url!, headers: req.headers, body });
      const status = scripts.get(req.url!)?.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;

  await putSecret(secret('slack-url'), `http://127.0.0.1:${port}/slack`);
  await putSecret(secret('teams-url'), `http://127.0.0.1:${port}/teams`);
  await putSecret(secret('pager-token'), 'Token token=y_NbAkKc66ryYTWUXYEu');
  const config = {
    ...cdkConfig(),
    notifications: {
      webhooks: [
        { name: 'ops-slack', kind: 'slack', urlSecretName: secret('slack-url'), events: ['PoolQuarantined', 'InstanceFlagged', 'WorkloadDriftDetected'], environments: ['PROD'] },
        { name: 'ops-teams', kind: 'teams', urlSecretName: secret('teams-url'), events: ['SwapRolledBack'] },
        { name: 'pager', kind: 'json', url: 'https://pager.example.com/v2/enqueue', secretName: secret('pager-token'), events: ['CircuitBreakerTripped'] },
        { name: 'flaky', kind: 'json', url: 'https://flaky.example.com/hook', events: ['WasteReport'], retryAttempts: 3 },
        { name: 'down', kind: 'json', url: 'https://down.example.com/hook', events: ['NodeDrifted'], retryAttempts: 2 },
      ],
    },
  };
  stack = await provision(synthTemplate(config));
  router = await ApiDestinationRouter.attach(stack, {
    rewriteEndpoint: (url) => url.replace(/^https:\/\/([a-z]+)\.example\.com\/.*$/, `http://127.0.0.1:${port}/$1`),
    backoffMs: 1,
  });
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

beforeEach(() => {
  received = [];
  scripts.clear();
});

/** Puts one event on Fleetwarden's bus, as a Fleetwarden function does, and returns its id. */
async function emit(source: string, detailType: string, detail: Record<string, unknown>): Promise<string> {
  const out = await awsClient(EventBridgeClient).send(new PutEventsCommand({ Entries: [{ EventBusName: stack.ref('StateStoreBus'), Source: source, DetailType: detailType, Detail: JSON.stringify(detail) }] }));
  expect(out.FailedEntryCount).toBe(0);
  return out.Entries![0]!.EventId!;
}

const flagged = (environment: string, account: string) => ({
  eventId: `evt-${environment}`,
  instanceKey: `${account}/us-east-1/i-0f1a2b3c4d5e6f708`,
  account,
  region: 'us-east-1',
  instanceId: 'i-0f1a2b3c4d5e6f708',
  environment,
  state: 'flagged',
  reason: 'no authorization rule matches',
  flaggedAt: '2026-12-07T10:00:00.000Z',
  graceUntil: '2026-12-08T10:00:00.000Z',
});

describe('webhooks (EventBridge API destinations, delivered by the local router)', () => {
  it('routes only the rules whose target is an API destination, one per webhook and event type', () => {
    expect(router.rules).toHaveLength(7);
  });

  it('posts a Slack message to the URL kept in Secrets Manager when a pool is quarantined', async () => {
    const id = await emit(EVENT_SOURCES.interruption, 'PoolQuarantined', {
      eventId: 'e-1',
      pool: 'us-east-1/use1-az6/m5.large',
      region: 'us-east-1',
      azId: 'use1-az6',
      instanceType: 'm5.large',
      until: '2026-12-22T10:00:00.000Z',
      reason: 'spot-interruption in PROD account 111111111111',
      riskScore: 1.5,
    });

    const calls = await router.route();

    expect(calls.map((c) => [c.outcome, c.statuses])).toEqual([['delivered', [200]]]);
    expect(received).toHaveLength(1);
    const [slack] = received;
    expect(slack!.path).toBe('/slack');
    expect(slack!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(slack!.headers[WEBHOOK_NAME_HEADER.toLowerCase()]).toBe('ops-slack');
    const { text } = JSON.parse(slack!.body) as { text: string };
    expect(text).toMatch(/^\*Fleetwarden: PoolQuarantined\*\nPool us-east-1\/use1-az6\/m5\.large is quarantined until 2026-12-22T10:00:00\.000Z \(risk score 1\.5\): no new Spot capacity is placed there\n_fleetwarden\.interruption, \S+, event (\S+)_$/);
    expect(text).toContain(`event ${id}_`);
  });

  it('tells Slack about instances flagged in PROD accounts only (the environment filter)', async () => {
    await emit(EVENT_SOURCES.enforcement, 'InstanceFlagged', flagged('LAB', '333333333333'));
    await emit(EVENT_SOURCES.enforcement, 'InstanceFlagged', flagged('PROD', '111111111111'));

    await router.route();

    expect(received.map((r) => JSON.parse(r.body).text.split('\n')[1])).toEqual(['Instance i-0f1a2b3c4d5e6f708 flagged as unauthorized in PROD account 111111111111 (us-east-1): no authorization rule matches']);
  });

  it('tells Slack about a workload drift, which carries no environment, so the PROD filter does not hold it back', async () => {
    const detail = {
      driftId: 'workload-drift#prod-eks#apps/Deployment web/storefront',
      cluster: 'prod-eks',
      namespace: 'web',
      kind: 'Deployment',
      name: 'storefront',
      driftType: 'image',
      diff: ['spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.28.0'],
      declaredCommit: 'c0ffee',
      action: 'rollback',
      openedAt: '2026-12-07T10:00:00.000Z',
      reason: 'image drift of Deployment web/storefront: spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.28.0',
    };
    const id = await emit(EVENT_SOURCES.workloads, 'WorkloadDriftDetected', detail);
    // Not configured for any webhook: delivered nowhere.
    await emit(EVENT_SOURCES.workloads, 'WorkloadDriftResolved', { ...detail, closedAt: '2026-12-07T10:10:00.000Z', reason: 'in sync again' });

    const calls = await router.route();

    expect(calls.map((c) => [c.outcome, c.statuses])).toEqual([['delivered', [200]]]);
    expect(received.map((r) => r.path)).toEqual(['/slack']);
    const { text } = JSON.parse(received[0]!.body) as { text: string };
    expect(text.split('\n')).toEqual([
      '*Fleetwarden: WorkloadDriftDetected*',
      'Workload drift in cluster prod-eks (action: rollback): image drift of Deployment web/storefront: spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.28.0',
      expect.stringMatching(new RegExp(`^_fleetwarden\\.workloads, \\S+, event ${id}_$`)),
    ]);
  });

  it('posts a Teams adaptive card when a swap is rolled back', async () => {
    await emit(EVENT_SOURCES.swap, 'SwapRolledBack', {
      executionId: 'swap-web-1',
      outcome: 'rolled-back',
      group: 'demo-web',
      region: 'us-east-1',
      oldInstanceId: 'i-0old',
      replacementInstanceId: 'i-0new',
      reason: 'Swap.ReplacementUnhealthy: status checks failed on i-0new',
    });

    await router.route();

    expect(received.map((r) => r.path)).toEqual(['/teams']);
    const card = JSON.parse(received[0]!.body);
    expect(card).toMatchObject({ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4' } }] });
    const [title, summary, facts] = card.attachments[0].content.body;
    expect(title.text).toBe('Fleetwarden: SwapRolledBack');
    expect(summary.text).toBe('Swap swap-web-1 of group demo-web was rolled back: Swap.ReplacementUnhealthy: status checks failed on i-0new');
    expect(facts.facts[0]).toEqual({ title: 'Source', value: 'fleetwarden.swap' });
  });

  it('sends the JSON envelope with the whole event and the auth header read from the secret, escaping what the reason quotes', async () => {
    const detail = { sweepId: 'sweep-1', targets: 4, planned: 12, tripped: true, reason: 'planned 12 actions > "maxActionsPerRun" 10' };
    const id = await emit(EVENT_SOURCES.enforcement, 'CircuitBreakerTripped', detail);

    await router.route();

    expect(received).toHaveLength(1);
    expect(received[0]!.path).toBe('/pager');
    expect(received[0]!.headers.authorization).toBe('Token token=y_NbAkKc66ryYTWUXYEu');
    const body = JSON.parse(received[0]!.body);
    expect(body).toMatchObject({
      source: 'fleetwarden.enforcement',
      detailType: 'CircuitBreakerTripped',
      summary: 'Circuit breaker tripped (fleetwarden.enforcement): planned 12 actions > "maxActionsPerRun" 10. Nothing was acted on',
      event: { id, source: 'fleetwarden.enforcement', 'detail-type': 'CircuitBreakerTripped', detail },
    });
  });

  it('delivers nothing for an event type no webhook is configured for', async () => {
    await emit(EVENT_SOURCES.enforcement, 'SweepChecked', { sweepId: 'sweep-2', planned: 0, tripped: false });
    await emit(EVENT_SOURCES.waste, 'WasteCleaned', { findingId: 'f-1', kind: 'volume', account: '111111111111', region: 'us-east-1', resourceId: 'vol-1', monthlyUsd: 8, outcome: 'removed' });

    expect(await router.route()).toEqual([]);
    expect(received).toEqual([]);
  });

  it('retries a webhook that answers 500 twice, then delivers on the third call', async () => {
    scripts.set('/flaky', [500, 500, 200]);
    await emit(EVENT_SOURCES.waste, 'WasteReport', { scanId: 'scan-1', totalMonthlyUsd: 42.5, findings: 3, marked: 1, plannedCleanups: 0, tripped: false, dryRun: true });

    const calls = await router.route();

    expect(calls.map((c) => [c.outcome, c.statuses])).toEqual([['delivered', [500, 500, 200]]]);
    expect(received.map((r) => r.path)).toEqual(['/flaky', '/flaky', '/flaky']);
    expect(new Set(received.map((r) => r.body)).size).toBe(1);
    expect(JSON.parse(received[2]!.body).summary).toBe('Waste scan scan-1: 3 findings, 42.5 USD a month; 1 marked, 0 cleanups planned');
  });

  it('puts the event in the notifications dead-letter queue when the webhook answers 500 every time', async () => {
    scripts.set('/down', [500, 500, 500, 500]);
    const detail = { group: 'demo-web', region: 'us-east-1', instanceId: 'i-0drift', differences: ['ami'], reason: 'ami ami-old != ami-new', repairable: true };
    const id = await emit(EVENT_SOURCES.drift, 'NodeDrifted', detail);

    const calls = await router.route();

    // The first call and retryAttempts (2) retries.
    expect(calls.map((c) => [c.outcome, c.statuses])).toEqual([['dead-lettered', [500, 500, 500]]]);
    const dlq = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref('NotificationsDeadLettersQueue'), MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
    expect(dlq.Messages).toHaveLength(1);
    const [parked] = dlq.Messages!;
    expect(JSON.parse(parked!.Body!)).toMatchObject({ id, 'detail-type': 'NodeDrifted', detail });
    const attribute = (name: string) => parked!.MessageAttributes![name]?.StringValue;
    expect(attribute('ERROR_CODE')).toBe('ERROR_FROM_TARGET');
    expect(attribute('ERROR_MESSAGE')).toBe('the endpoint answered 500');
    expect(attribute('EXHAUSTED_RETRY_CONDITION')).toBe('MaximumRetryAttemptsExhausted');
    expect(attribute('RULE_ARN')).toMatch(/:rule\/.+NodeDriftedRule/);
  });
});
