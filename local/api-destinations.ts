import { PutTargetsCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClient } from '../functions/shared/aws';
import type { LocalRoute, LocalStack } from './provision';
import { Resolver } from './template';
import { CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand, ResourceExistsException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * EventBridge API destinations, locally. moto stores a rule whose target is an API destination
 * but cannot call it, so provision() records such targets as `routes`; this router delivers them
 * the way EventBridge does:
 *
 * - Matching is moto's own (the repo has no other): each route's rule gets a capture queue as
 *   an extra target in moto, so a real PutEvents on the bus lands there exactly when the rule's
 *   pattern matches, as it does for every SQS target of the stack.
 * - The target's InputTransformer is applied: InputPathsMap paths in the subset EventBridge
 *   documents and Fleetwarden uses (`$`, `.name` with letters, digits, `-` and `_`, `[n]`; no
 *   wildcards), the predefined `aws.events.*` variables, and the template filled in as EventBridge
 *   does: inside a JSON string a string value is JSON-escaped, anything else is inserted as JSON.
 *   A path the event does not have gives an empty string inside quotes and `null` outside (an
 *   assumption: EventBridge does not document it).
 * - The call goes to the API destination's endpoint with its method, the connection's API key
 *   header, and `Content-Type: application/json; charset=utf-8`. `{{resolve:secretsmanager:…}}`
 *   references (endpoint, API key) are read from moto's Secrets Manager, as CloudFormation does at
 *   deploy time. EventBridge only calls https endpoints; locally `http://` is allowed for
 *   127.0.0.1 and localhost only, and `rewriteEndpoint` can point an https URL at a local server.
 * - Failures are retried as EventBridge does for API destinations (401, 407, 409, 429, 5xx, no
 *   answer within 5 s), up to the target's MaximumRetryAttempts and MaximumEventAgeInSeconds, with
 *   a short exponential backoff instead of EventBridge's minutes; any other status is not retried.
 *   An event that failed for good is sent to the target's dead-letter queue in moto, with the
 *   RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION and RETRY_ATTEMPTS
 *   attributes EventBridge sets.
 */
export interface WebhookCall {
  rule: string;
  endpoint: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  /** The status of each attempt, 0 when there was no answer. */
  statuses: number[];
  outcome: 'delivered' | 'dead-lettered';
}

export interface ApiDestinationOptions {
  rewriteEndpoint?: (endpoint: string) => string;
  /** First retry delay; doubled at each retry, at most 1 s. */
  backoffMs?: number;
}

interface DestinationRoute {
  route: LocalRoute;
  ruleArn: string;
  capture: string;
  endpoint: string;
  method: string;
  auth?: { header: string; value: string };
  deadLetterQueueUrl?: string;
}

const RETRIED_STATUSES = new Set([401, 407, 409, 429]);
const CALL_TIMEOUT_MS = 5_000;

export class ApiDestinationRouter {
  private constructor(
    private readonly routes: DestinationRoute[],
    private readonly options: ApiDestinationOptions,
  ) {}

  /** Adds a capture queue to the rule of every API destination route of the stack. */
  static async attach(stack: LocalStack, options: ApiDestinationOptions = {}): Promise<ApiDestinationRouter> {
    const resolver = new Resolver(stack.identities, stack.pseudo);
    const byArn = new Map([...stack.identities].map(([logicalId, identity]) => [identity.attrs.Arn, logicalId]));
    const sqs = awsClient(SQSClient);
    const eventBridge = awsClient(EventBridgeClient);
    const routes: DestinationRoute[] = [];
    for (const route of stack.routes) {
      const logicalId = byArn.get(route.targetArn);
      const destination = logicalId ? stack.template.Resources[logicalId] : undefined;
      if (destination?.Type !== 'AWS::Events::ApiDestination') continue;
      const d = resolver.resolve(destination.Properties) as { InvocationEndpoint: string; HttpMethod: string; ConnectionArn: string };
      const connectionId = byArn.get(d.ConnectionArn);
      const connection = connectionId ? (resolver.resolve(stack.template.Resources[connectionId]!.Properties) as { AuthorizationType: string; AuthParameters?: { ApiKeyAuthParameters?: { ApiKeyName: string; ApiKeyValue: string } } }) : undefined;
      if (connection && connection.AuthorizationType !== 'API_KEY') throw new Error(`${connectionId}: only API_KEY connections are delivered locally`);
      const apiKey = connection?.AuthParameters?.ApiKeyAuthParameters;
      const name = `${route.rule}-capture`.slice(0, 80);
      const capture = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
      const captureArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: capture, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
      await eventBridge.send(new PutTargetsCommand({ Rule: route.rule, EventBusName: route.busName, Targets: [{ Id: 'local-api-destination-capture', Arn: captureArn }] }));
      const deadLetterId = route.deadLetterArn ? byArn.get(route.deadLetterArn) : undefined;
      routes.push({
        route,
        ruleArn: `arn:aws:events:${stack.pseudo.region}:${stack.pseudo.accountId}:rule/${route.busName}/${route.rule}`,
        capture,
        endpoint: d.InvocationEndpoint,
        method: d.HttpMethod,
        auth: apiKey ? { header: apiKey.ApiKeyName, value: apiKey.ApiKeyValue } : undefined,
        deadLetterQueueUrl: deadLetterId ? stack.identities.get(deadLetterId)!.ref : undefined,
      });
    }
    return new ApiDestinationRouter(routes, options);
  }

  /** The rules routed to API destinations. */
  get rules(): string[] {
    return this.routes.map((r) => r.route.rule);
  }

  /** Delivers every event the rules matched since the last call; resolves when each is delivered or dead-lettered. */
  async route(): Promise<WebhookCall[]> {
    const calls: WebhookCall[] = [];
    for (const route of this.routes) {
      for (const event of await drain(route.capture)) calls.push(await this.deliver(route, event));
    }
    return calls;
  }

  private async deliver(route: DestinationRoute, event: Record<string, any>): Promise<WebhookCall> {
    const endpoint = localEndpoint(await resolveSecrets(route.endpoint), this.options.rewriteEndpoint);
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    if (route.auth) headers[route.auth.header.toLowerCase()] = await resolveSecrets(route.auth.value);
    const body = route.route.inputTransformer ? transformInput(route.route.inputTransformer, event, { ruleArn: route.ruleArn, ruleName: route.route.rule }) : route.route.input ?? JSON.stringify(event);
    const maxRetries = route.route.retryPolicy?.MaximumRetryAttempts ?? 185;
    const maxAgeMs = (route.route.retryPolicy?.MaximumEventAgeInSeconds ?? 86_400) * 1000;
    const eventTime = Date.parse(event.time) || Date.now();
    const statuses: number[] = [];
    const call: WebhookCall = { rule: route.route.rule, endpoint, method: route.method, headers, body, statuses, outcome: 'delivered' };
    for (let retry = 0; ; retry += 1) {
      const status = await send(endpoint, route.method, headers, body);
      statuses.push(status);
      if (status >= 200 && status < 300) return call;
      const retryable = status === 0 || status >= 500 || RETRIED_STATUSES.has(status);
      const exhausted = !retryable ? undefined : retry >= maxRetries ? 'MaximumRetryAttemptsExhausted' : Date.now() - eventTime > maxAgeMs ? 'MaximumEventAgeExhausted' : undefined;
      if (!retryable || exhausted) {
        call.outcome = 'dead-lettered';
        await this.deadLetter(route, event, status, retry, exhausted);
        return call;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, (this.options.backoffMs ?? 10) * 2 ** retry)));
    }
  }

  private async deadLetter(route: DestinationRoute, event: Record<string, any>, status: number, retries: number, exhausted?: string): Promise<void> {
    if (!route.deadLetterQueueUrl) return;
    const attribute = (value: string) => ({ DataType: 'String', StringValue: value });
    await awsClient(SQSClient).send(
      new SendMessageCommand({
        QueueUrl: route.deadLetterQueueUrl,
        MessageBody: JSON.stringify(event),
        MessageAttributes: {
          RULE_ARN: attribute(route.ruleArn),
          TARGET_ARN: attribute(route.route.targetArn),
          ERROR_CODE: attribute(status === 0 ? 'CONNECTION_FAILURE' : 'ERROR_FROM_TARGET'),
          ERROR_MESSAGE: attribute(status === 0 ? `no answer from the endpoint within ${CALL_TIMEOUT_MS / 1000} s` : `the endpoint answered ${status}`),
          RETRY_ATTEMPTS: attribute(String(retries)),
          ...(exhausted ? { EXHAUSTED_RETRY_CONDITION: attribute(exhausted) } : {}),
        },
      }),
    );
  }
}

async function drain(queueUrl: string): Promise<Record<string, any>[]> {
  const sqs = awsClient(SQSClient);
  const events: Record<string, any>[] = [];
  for (;;) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    if (!out.Messages?.length) return events;
    events.push(...out.Messages.map((m) => JSON.parse(m.Body!) as Record<string, any>));
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: out.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
}

async function send(endpoint: string, method: string, headers: Record<string, string>, body: string): Promise<number> {
  try {
    const response = await fetch(endpoint, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body, redirect: 'manual', signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

function localEndpoint(endpoint: string, rewrite?: (endpoint: string) => string): string {
  const url = new URL(rewrite ? rewrite(endpoint) : endpoint);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(url.hostname))) return url.toString();
  throw new Error(`${url.protocol}//${url.host}: EventBridge calls https endpoints only (http is allowed locally for 127.0.0.1 and localhost)`);
}

// ---------------------------------------------------------------------------------------------
// Input transformer

/** The value at an InputPathsMap path: `$`, `.name` segments (letters, digits, - and _) and `[n]` indices. */
export function valueAtPath(event: unknown, path: string): unknown {
  if (!path.startsWith('$')) throw new Error(`${path}: an input path starts with $`);
  const rest = path.slice(1);
  const segment = /\.([A-Za-z0-9_/-]+)|\[(\d+)\]/gy;
  let value: unknown = event;
  let matched = 0;
  for (const m of rest.matchAll(segment)) {
    matched += m[0].length;
    if (value === null || typeof value !== 'object') return undefined;
    value = m[1] !== undefined ? (value as Record<string, unknown>)[m[1]] : (value as unknown[])[Number(m[2])];
  }
  if (matched !== rest.length) throw new Error(`${path}: only dot names and [n] indices are supported locally (no wildcards)`);
  return value;
}

/** Fills an input template as EventBridge does (see the module comment for what is assumed). */
export function transformInput(transformer: { InputPathsMap?: Record<string, string>; InputTemplate: string }, event: Record<string, any>, rule: { ruleArn: string; ruleName: string }): string {
  const { detail: _detail, ...withoutDetail } = event;
  const values = new Map<string, unknown>([
    ['aws.events.rule-arn', rule.ruleArn],
    ['aws.events.rule-name', rule.ruleName],
    ['aws.events.event.ingestion-time', new Date().toISOString()],
    ['aws.events.event', withoutDetail],
    ['aws.events.event.json', event],
  ]);
  for (const [name, path] of Object.entries(transformer.InputPathsMap ?? {})) values.set(name, valueAtPath(event, path));
  const template = transformer.InputTemplate;
  let out = '';
  let inString = false;
  for (let i = 0; i < template.length; i += 1) {
    const c = template[i]!;
    if (c === '\\' && inString) {
      out += template.slice(i, i + 2);
      i += 1;
      continue;
    }
    if (c === '"') inString = !inString;
    const placeholder = c === '<' ? /^<([A-Za-z0-9_.-]+)>/.exec(template.slice(i)) : null;
    if (placeholder && values.has(placeholder[1]!)) {
      const value = values.get(placeholder[1]!);
      if (inString) out += value === undefined || value === null ? '' : JSON.stringify(typeof value === 'string' ? value : JSON.stringify(value)).slice(1, -1);
      else out += value === undefined ? 'null' : JSON.stringify(value);
      i += placeholder[0].length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager (moto's, through the SDK client like every other service here)

/** Creates (or updates) a secret, as an operator does before deploying; returns its ARN. */
export async function putSecret(name: string, value: string): Promise<string> {
  const client = awsClient(SecretsManagerClient);
  try {
    return (await client.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!;
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    return (await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }))).ARN!;
  }
}

/** Replaces `{{resolve:secretsmanager:id:SecretString:json-key:stage:version}}` references, as CloudFormation does. */
export async function resolveSecrets(value: string): Promise<string> {
  const reference = /\{\{resolve:secretsmanager:(.+?)(?::SecretString(?::([^:}]*))?(?::([^:}]*))?(?::([^:}]*))?)?\}\}/g;
  let out = value;
  for (const m of value.matchAll(reference)) {
    const [whole, secretId, jsonKey, stage, version] = m;
    const secret = await awsClient(SecretsManagerClient).send(new GetSecretValueCommand({ SecretId: secretId, ...(stage ? { VersionStage: stage } : {}), ...(version ? { VersionId: version } : {}) }));
    const text = secret.SecretString ?? '';
    const resolved = jsonKey ? String((JSON.parse(text) as Record<string, unknown>)[jsonKey]) : text;
    out = out.replace(whole, resolved);
  }
  return out;
}
