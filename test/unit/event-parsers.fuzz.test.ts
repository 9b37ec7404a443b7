import { readFileSync } from 'node:fs';
import { inspect, isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HANDLED_EVENTS, type InterruptionEvent, InterruptionEventKindSchema, SPOT_NOTICE_MS, WATCHED_STATES, parseInterruptionEvent } from '../../functions/interruption/events';
import { type InstanceInterruptedDetail, InstanceInterruptedDetailSchema, parseInstanceInterrupted } from '../../functions/kubernetes/events';
import { EnvironmentClassSchema } from '../../functions/shared/environments';
import { TerminalError } from '../../functions/shared/errors';
import { RecordingDeadLetters, pipelineTools, sqsRecord } from '../sqs-support';
import { type ParsedRecord, parseRecordBody, processSqsRecords } from '../../functions/shared/sqs-records';

/**
 * Fuzzing of the parse step of both SQS consumers, as the pipeline runs it:
 * `parseRecordBody(body, parseInterruptionEvent)` (interruption ingest) and
 * `parseRecordBody(body, parseInstanceInterrupted)` (node drain). Bodies are the real fixtures
 * (test/events) and valid events generated from them, mutated at a random path (replaced,
 * deleted, inserted, wrapped, retyped), truncated, put under another event's header, smuggled
 * under prototype keys, plus random JSON and random strings. Whatever the body, the parse step
 * never throws, and either gives a well-formed event that agrees with the body, or a
 * Terminal.UnknownEvent / Terminal.MalformedEvent whose reason can be parked with the record.
 */

const RUNS_PER_PARSER = 10_000;
const BATCH_RUNS = 300;

// ---------------------------------------------------------------------------------------------
// The events: the real fixtures, and Fleetwarden's own InstanceInterrupted as the bus delivers it
// ---------------------------------------------------------------------------------------------

const FIXTURE_OF = {
  'spot-interruption': 'spot-interruption-warning',
  'rebalance-recommendation': 'rebalance-recommendation',
  'state-change': 'state-change-shutting-down',
  'scheduled-change': 'health-scheduled-retirement',
  'asg-termination': 'asg-terminate-lifecycle-action',
} as const;
type Kind = keyof typeof FIXTURE_OF;
const KINDS = Object.keys(FIXTURE_OF) as Kind[];
type Target = Kind | 'instance-interrupted';

const readFixture = (name: string) => readFileSync(new URL(`../events/${name}.json`, import.meta.url), 'utf8');

/** As EventBridge delivers what the ingest publishes (the @example of functions/kubernetes/events.ts). */
const INSTANCE_INTERRUPTED = {
  version: '0',
  id: '5b1c7d2e-8f90-4a1b-b2c3-d4e5f6a7b8c9',
  'detail-type': 'InstanceInterrupted',
  source: 'fleetwarden.interruption',
  account: '123456789012',
  time: '2026-11-22T10:00:01Z',
  region: 'us-east-1',
  resources: [],
  detail: {
    eventId: '1e5527d7-bb36-4607-3370-4164db56a40e',
    kind: 'spot-interruption',
    instanceId: 'i-0b3a5c4d7e8f90123',
    account: '111111111111',
    region: 'us-east-1',
    environment: 'PROD',
    pool: 'us-east-1/use1-az6/m5.large',
    lifecycle: 'spot',
    clusterName: 'prod-eks',
    deadline: '2026-11-22T10:02:00.000Z',
  },
};

const TEXT: Record<Target, string> = {
  ...(Object.fromEntries(KINDS.map((kind) => [kind, readFixture(FIXTURE_OF[kind])])) as Record<Kind, string>),
  'instance-interrupted': JSON.stringify(INSTANCE_INTERRUPTED, null, 2),
};
const TARGETS = Object.keys(TEXT) as Target[];
const fixtureOf = (target: Target): Record<string, any> => JSON.parse(TEXT[target]);
const headerOf = (target: Target) => {
  const { source, 'detail-type': detailType } = fixtureOf(target);
  return { source: source as string, 'detail-type': detailType as string };
};

const KIND_OF_DETAIL_TYPE: Record<string, Kind> = Object.fromEntries(KINDS.map((kind) => [headerOf(kind)['detail-type'], kind]));

/** Headers to put a detail under: every handled one, Fleetwarden's own, another AWS event, crossed pairs, and near misses. */
const HEADERS = [
  ...TARGETS.map(headerOf),
  { source: 'aws.states', 'detail-type': 'Step Functions Execution Status Change' },
  { source: 'aws.ec2', 'detail-type': 'EC2 Fleet Error' },
  { source: 'aws.health', 'detail-type': 'EC2 Spot Instance Interruption Warning' },
  { source: 'aws.autoscaling', 'detail-type': 'EC2 Instance Rebalance Recommendation' },
  { source: 'aws.ec2', 'detail-type': 'InstanceInterrupted' },
  { source: 'fleetwarden.interruption', 'detail-type': 'EC2 Instance State-change Notification' },
  { source: 'AWS.EC2', 'detail-type': 'EC2 Spot Instance Interruption Warning' },
  { source: 'aws.ec2 ', 'detail-type': 'EC2 Spot Instance Interruption Warning' },
  { source: 'aws.health', 'detail-type': 'AWS Health Event\u0000' },
  { source: 'fleetwarden.kubernetes', 'detail-type': 'InstanceInterrupted' },
];

// ---------------------------------------------------------------------------------------------
// Values: valid ones, and the nasty ones the mutations put in
// ---------------------------------------------------------------------------------------------

const hex = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max });
const instanceIdArb = fc.oneof(hex(8, 8), hex(17, 17), hex(9, 16)).map((h) => `i-${h}`);
const accountArb = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 12, maxLength: 12 });
const regionArb = fc.constantFrom('us-east-1', 'eu-west-3', 'ap-southeast-2', 'us-gov-west-1');
const dateArb = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true });

/** An ISO 8601 date-time with an offset, with or without milliseconds, as EventBridge and the ingest write them. */
const isoTimeArb = fc.tuple(dateArb, fc.constantFrom('Z', '+00:00', '+05:30', '-08:00', '+14:00', '-12:00'), fc.boolean()).map(([date, offset, millis]) => {
  const minutes = offset === 'Z' ? 0 : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(date.getTime() + minutes * 60_000).toISOString();
  return `${millis ? local.slice(0, 23) : local.slice(0, 19)}${offset}`;
});

/** An RFC 1123 date as AWS Health writes it, sometimes without the weekday or with a one-digit day (RFC 1123 allows both). */
const rfc1123Arb = fc.tuple(dateArb, fc.boolean(), fc.boolean()).map(([date, weekday, shortDay]) => {
  let text = date.toUTCString(); // "Sat, 05 Dec 2026 06:00:00 GMT"
  if (shortDay) text = text.replace(/, 0(\d) /, ', $1 ');
  return weekday ? text : text.slice(5);
});

const entitiesArb = fc
  .tuple(fc.array(instanceIdArb, { minLength: 1, maxLength: 4 }), fc.array(fc.constantFrom('vol-0123456789abcdef0', 'eni-0123456789abcdef0', 'arn:aws:ec2:us-east-1:111111111111:instance/i-0b3a5c4d7e8f90123', 'i-XYZ'), { maxLength: 3 }), fc.nat())
  .map(([ids, others, at]) => {
    const cut = at % (others.length + 1);
    return [...others.slice(0, cut), ...ids, ...others.slice(cut)].map((entityValue) => ({ entityValue }));
  });

const DETAILS: Record<Kind, fc.Arbitrary<Record<string, unknown>>> = {
  'spot-interruption': fc.record({ 'instance-id': instanceIdArb, 'instance-action': fc.constantFrom('terminate', 'stop', 'hibernate') }),
  'rebalance-recommendation': fc.record({ 'instance-id': instanceIdArb }),
  'state-change': fc.record({ 'instance-id': instanceIdArb, state: fc.constantFrom('pending', 'running', ...WATCHED_STATES) }),
  'scheduled-change': fc.record({
    eventTypeCode: fc.constantFrom('AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED', 'AWS_EC2_MAINTENANCE_SCHEDULED', 'AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED'),
    startTime: rfc1123Arb,
    affectedEntities: entitiesArb,
  }),
  'asg-termination': fc.record({
    EC2InstanceId: instanceIdArb,
    AutoScalingGroupName: fc.string({ minLength: 1, maxLength: 40 }),
    LifecycleHookName: fc.string({ minLength: 1, maxLength: 40 }),
    LifecycleActionToken: fc.uuid(),
  }),
};

const envelopeArb = fc.record({ id: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 40 })), account: accountArb, time: isoTimeArb, region: regionArb, dropResources: fc.boolean(), dropVersion: fc.boolean() });

/** A valid AWS event of one kind: its real fixture with generated ids, accounts, times and details. */
function validAwsEvent(kind: Kind): fc.Arbitrary<Record<string, any>> {
  return fc.tuple(envelopeArb, DETAILS[kind]).map(([envelope, detail]) => {
    const event = fixtureOf(kind);
    Object.assign(event, { id: envelope.id, account: envelope.account, time: envelope.time, region: envelope.region });
    if (envelope.dropResources) delete event.resources;
    if (envelope.dropVersion) delete event.version;
    Object.assign(event.detail, detail);
    return event;
  });
}

/** A valid InstanceInterrupted: every optional field of the detail present or not. */
const validInstanceInterrupted: fc.Arbitrary<Record<string, any>> = fc
  .record({
    id: fc.uuid(),
    time: isoTimeArb,
    detail: fc.record(
      {
        eventId: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 60 })),
        kind: fc.constantFrom(...InterruptionEventKindSchema.options),
        instanceId: instanceIdArb,
        account: accountArb,
        region: regionArb,
        environment: fc.constantFrom(...EnvironmentClassSchema.options),
        pool: fc.string({ maxLength: 40 }),
        lifecycle: fc.constantFrom('spot', 'on-demand'),
        asgName: fc.string({ maxLength: 40 }),
        clusterName: fc.string({ minLength: 1, maxLength: 40 }),
        state: fc.constantFrom('pending', 'running', ...WATCHED_STATES),
        deadline: isoTimeArb,
        asg: fc.record({ name: fc.string(), hook: fc.string(), token: fc.string() }),
      },
      { requiredKeys: ['eventId', 'kind', 'instanceId', 'account', 'region', 'environment'] },
    ),
  })
  .map(({ id, time, detail }) => ({ ...fixtureOf('instance-interrupted'), id, time, detail }));

const validEvent = (target: Target) => (target === 'instance-interrupted' ? validInstanceInterrupted : validAwsEvent(target));

/** UTF-16 code units, any: lone surrogates, NUL and other control characters included. */
const utf16String = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });

const WEIRD_STRINGS = [
  '', ' ', '\u0000', 'i-0b3a5c4d\u0000', '\ud800', '\udfff', '\ud83d', 'i-0b3a5c4d\udc00', '\u202e', '\u202eevil\u202c', '\u200f', 'مرحبا بالعالم', 'שלום', '\ufeff', '\uffff', '\ufffe', '😀', 'e\u0301',
  '\n', '\r\n', '\t', 'null', 'undefined', 'true', '0', '-1', '1e309', 'NaN', '__proto__', 'constructor', 'prototype', '{}', '[]', '"', '\\', '<script>alert(1)</script>', '%s%n%x', "' OR 1=1 --", '${jndi:ldap://x}',
];
/** Values one character away from valid ones: ids, accounts, dates, enums, literals. */
const NEAR_MISSES = [
  'i-', 'i-0', 'i-0b3a5c4', 'i-0b3a5c4d7e8f901234', 'i-0B3A5C4D7E8F90123', 'i-0b3a5c4d7e8f90123\n', ' i-0b3a5c4d7e8f90123', 'i-0b3a5c4d7e8f90123 ', 'I-0b3a5c4d', 'i-０１２３４５６７', 'i-0123456g', 'i_0b3a5c4d',
  '11111111111', '1111111111111', '111111111111\n', '１１１１１１１１１１１１', '-11111111111', '11111111111a',
  '2026-02-29T10:00:00Z', '2026-02-30T10:00:00Z', '2026-11-22T24:00:00Z', '2026-11-22T23:59:60Z', '2026-11-22T10:00:00', '2026-11-22', '2026-11-22 10:00:00Z', '2026-11-22T10:00Z', '2026-11-22T10:00:00+24:00', '+275760-09-13T00:00:00Z', '1795403414968',
  'Sat, 05 Dec 2026 06:00:00 GMT', 'Sat, 31 Feb 2026 06:00:00 GMT', 'Sat, 05 Dec 2026 23:59:60 GMT', 'Sat, 05 Dec 2026 24:00:00 GMT', 'Sat, 05 Dec 2026 06:00:00 PST', 'Mon, 05 Dec 2026 06:00:00 GMT', 'Sat, 05 Dec 2026 06:00:00', 'x 1', 'foo 12', '1', '2026', 'Z 2026', 'garbage',
  'terminate ', 'TERMINATE', 'explode', 'shutting_down', 'Shutting-Down', 'EC2 ', 'ec2', 'scheduledchange', 'issue', 'autoscaling:EC2_INSTANCE_LAUNCHING', 'PROD ', 'prod', 'spot ', 'on_demand', 'spot-interruption ', 'rebalance',
];
const hugeString = fc.constantFrom('x', 'é', '😀', '\u0000', '\ud800', '\u202e', 'i-0', '"').map((c) => c.repeat(Math.ceil(100_000 / c.length)));

const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...WEIRD_STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom(...NEAR_MISSES) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: utf16String(30) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 1, arbitrary: hugeString },
);

/** Rendered in place as raw JSON text nested this deep (JSON.stringify itself would overflow the stack). */
const deepPlaceholder = (shape: 'array' | 'object', depth: number) => `\u0001deep:${shape}:${depth}\u0001`;
const deepArb = fc.tuple(fc.constantFrom('array' as const, 'object' as const), fc.constantFrom(64, 1_000, 10_000)).map(([shape, depth]) => deepPlaceholder(shape, depth));

/** Objects whose own keys are "__proto__" or "constructor", as JSON.parse makes them (own properties, not prototypes). */
const prototypeBaitArb = fc
  .constantFrom(
    '{"__proto__":{"polluted":true,"instance-id":"i-0b3a5c4d7e8f90123","source":"aws.ec2"}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"__proto__":[]}',
    '{"__proto__":null}',
    '{"toString":"x","valueOf":1,"hasOwnProperty":null}',
  )
  .map((text) => JSON.parse(text) as unknown);

/** A valid value of some other field or event: a detail where a string goes, an id where a number goes, etc. */
const validElsewhereArb: fc.Arbitrary<unknown> = fc.oneof(instanceIdArb, accountArb, isoTimeArb, rfc1123Arb, ...KINDS.map((kind) => DETAILS[kind]), fc.constant(INSTANCE_INTERRUPTED.detail), entitiesArb);

const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e21, 111111111111, Number.MAX_SAFE_INTEGER + 2, 1795403414968, 0.5)) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], {}, [null], [{}], ['i-0b3a5c4d7e8f90123'], [{ entityValue: 'i-0b3a5c4d7e8f90123' }], { entityValue: 'i-0b3a5c4d7e8f90123' }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: prototypeBaitArb },
  { weight: 1, arbitrary: deepArb },
  { weight: 2, arbitrary: validElsewhereArb },
);

const keyArb = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', 'id', 'source', 'detail-type', 'detail', 'account', 'time', 'region', 'resources'),
  fc.constantFrom('instance-id', 'instance-action', 'state', 'startTime', 'affectedEntities', 'entityValue', 'EC2InstanceId', 'eventId', 'kind', 'instanceId', 'environment', 'deadline', 'asg', 'clusterName'),
  fc.string({ maxLength: 10 }),
  fc.constantFrom(...WEIRD_STRINGS),
);

// ---------------------------------------------------------------------------------------------
// Mutations at a path of the event
// ---------------------------------------------------------------------------------------------

type Mutation =
  | { op: 'replace'; at: number; value: unknown }
  | { op: 'delete'; at: number }
  | { op: 'insert'; at: number; key: string; value: unknown }
  | { op: 'wrap' | 'stringify' | 'retype'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: nastyValue }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), key: keyArb, value: nastyValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('wrap' as const, 'stringify' as const, 'retype' as const), at: fc.nat() }) },
);

type Path = (string | number)[];
const isContainer = (value: unknown): value is Record<string, unknown> | unknown[] => typeof value === 'object' && value !== null;
/** A copy as JSON.parse makes it: own "__proto__" keys stay own keys. */
const copy = <T>(value: T): T => (value === undefined ? value : JSON.parse(JSON.stringify(value)));
/** Sets an own property, even "__proto__" (plain assignment would set the prototype). */
const setOwn = (target: object, key: string | number, value: unknown) => Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });

function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((item, i) => pathsOf(item, [...at, i], out));
  else if (isContainer(value)) for (const key of Object.keys(value)) pathsOf((value as Record<string, unknown>)[key], [...at, key], out);
  return out;
}

function valueAt(root: unknown, path: Path): any {
  let node: any = root;
  for (const key of path) node = Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
  return node;
}

function retype(node: unknown): unknown {
  if (typeof node === 'string') return /^\d+$/.test(node) ? Number(node) : node.length; // numbers where strings go
  if (typeof node === 'number' || typeof node === 'boolean') return String(node);
  if (node === null) return {};
  if (Array.isArray(node)) return Object.fromEntries(node.entries()); // objects where arrays go
  return Object.values(node as object); // arrays where objects go
}

function mutate(event: unknown, mutations: Mutation[]): unknown {
  let root = copy(event);
  for (const mutation of mutations) {
    const paths = pathsOf(root);
    const path = paths[mutation.at % paths.length]!;
    const node = valueAt(root, path);
    const parent = path.length ? valueAt(root, path.slice(0, -1)) : undefined;
    const key = path.at(-1)!;
    const put = (value: unknown) => {
      if (!path.length) root = value;
      else setOwn(parent, key, value);
    };
    switch (mutation.op) {
      case 'replace':
        put(copy(mutation.value));
        break;
      case 'delete':
        if (!path.length) root = {};
        else if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        break;
      case 'insert': {
        const container = isContainer(node) ? node : isContainer(parent) ? parent : undefined;
        const value = copy(mutation.value);
        if (Array.isArray(container)) container.splice(mutation.at % (container.length + 1), 0, value);
        else if (container) setOwn(container, mutation.key, value);
        else root = setOwn({}, mutation.key, value);
        break;
      }
      case 'wrap':
        put([node]);
        break;
      case 'stringify':
        put(JSON.stringify(node) ?? 'undefined');
        break;
      case 'retype':
        put(retype(node));
        break;
    }
  }
  return root;
}

/** The body text of an event, deep placeholders expanded. */
function render(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(/"\\u0001deep:(array|object):(\d+)\\u0001"/g, (_, shape: string, depth: string) =>
    shape === 'array' ? '['.repeat(Number(depth)) + ']'.repeat(Number(depth)) : '{"a":'.repeat(Number(depth)) + 'null' + '}'.repeat(Number(depth)),
  );
}

// ---------------------------------------------------------------------------------------------
// Bodies: what an SQS record of one consumer may carry
// ---------------------------------------------------------------------------------------------

interface Case {
  how: string;
  body: string;
  /** A valid event: must be accepted. */
  valid?: boolean;
  /** Cut short: must be refused as not JSON. */
  truncated?: boolean;
}

function bodiesFor(target: Target): fc.Arbitrary<Case> {
  const valid = validEvent(target);
  const validOrFixture = fc.oneof(valid, fc.constant(null).map(() => fixtureOf(target)));
  const others = TARGETS.filter((t) => t !== target).map(validEvent);
  const mutated = fc.tuple(validOrFixture, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([event, mutations]) => mutate(event, mutations));
  const anyField = (good: fc.Arbitrary<unknown>) => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: nastyValue });

  return fc.oneof(
    { weight: 10, arbitrary: valid.map((event): Case => ({ how: 'valid', body: render(event), valid: true })) },
    { weight: 40, arbitrary: mutated.map((event): Case => ({ how: 'mutated', body: render(event) })) },
    {
      weight: 8,
      arbitrary: fc.oneof(
        fc.tuple(valid, fc.constantFrom(...HEADERS)).map(([event, header]): Case => ({ how: 'this detail under another header', body: render({ ...event, ...header }) })),
        fc.tuple(fc.oneof(...others), fc.constant(headerOf(target))).map(([event, header]): Case => ({ how: "another event's detail under this header", body: render({ ...event, ...header }) })),
      ),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.constantFrom('__proto__', 'constructor'), fc.boolean()).map(([event, picks, holder, inDetail]): Case => {
        const from: Record<string, unknown> = inDetail && isContainer(event.detail) && !Array.isArray(event.detail) ? event.detail : event;
        const keys = Object.keys(from);
        const smuggled = {};
        for (const pick of picks) {
          const key = keys[pick % keys.length]!;
          if (Object.prototype.hasOwnProperty.call(from, key)) setOwn(smuggled, key, from[key]);
          delete from[key];
        }
        setOwn(from, holder, smuggled);
        return { how: `fields smuggled under ${holder}`, body: render(event) };
      }),
    },
    {
      weight: 12,
      arbitrary: fc
        .tuple(fc.oneof(valid.map(render), mutated.map(render), fc.constant(TEXT[target])), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }))
        .map(([text, at]): Case => {
          const end = text.trimEnd().length;
          return { how: 'truncated', body: text.slice(0, Math.floor(at * end)), truncated: /^[{["]/.test(text) };
        }),
    },
    {
      weight: 8,
      arbitrary: fc.tuple(validOrFixture, fc.constantFrom('whitespace', 'bom', 'twice', 'array', 'double-encoded', 'nul-tail', 'envelope')).map(([event, how]): Case => {
        const text = render(event);
        const body = {
          whitespace: ` \r\n\t${text}\n `,
          bom: `\ufeff${text}`,
          twice: `${text}${text}`,
          array: `[${text}]`,
          'double-encoded': JSON.stringify(text),
          'nul-tail': `${text}\u0000`,
          envelope: JSON.stringify({ Type: 'Notification', Message: text }),
        }[how];
        return { how, body, valid: how === 'whitespace' };
      }),
    },
    {
      weight: 6,
      arbitrary: fc
        .record(
          {
            version: anyField(fc.constant('0')),
            id: anyField(fc.uuid()),
            account: anyField(accountArb),
            time: anyField(isoTimeArb),
            region: anyField(regionArb),
            resources: anyField(fc.array(fc.string(), { maxLength: 3 })),
            detail: fc.oneof(target === 'instance-interrupted' ? fc.constant(INSTANCE_INTERRUPTED.detail) : DETAILS[target], fc.jsonValue({ maxDepth: 3 }), nastyValue),
          },
          { requiredKeys: [] },
        )
        .map((fields): Case => ({ how: 'random fields under this header', body: render({ ...fields, ...headerOf(target) }) })),
    },
    { weight: 6, arbitrary: fc.jsonValue().map((value): Case => ({ how: 'random JSON', body: JSON.stringify(value) })) },
    {
      weight: 6,
      arbitrary: fc
        .oneof(
          fc.string({ unit: 'binary', maxLength: 60 }),
          utf16String(60),
          fc.string({ unit: fc.constantFrom(...'{}[]":,0123456789-.eE+tfnrulas \\/'), maxLength: 40 }),
          fc.constantFrom('', ' ', 'null', 'true', '0', '""', '[]', '{}', '{"source":"aws.ec2"}', 'undefined', 'NaN', '\ufeff{}', '{"__proto__":{"source":"aws.ec2"}}'),
          hugeString,
        )
        .map((body): Case => ({ how: 'random string', body })),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// What every parse result must satisfy
// ---------------------------------------------------------------------------------------------

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const ACCOUNT = /^\d{12}$/;
/** What an SQS message attribute (the DLQ reason) may hold: the message body's character set. */
const SQS_CHARACTERS = /^[\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;
/** What functions/shared/dead-letters.ts keeps of a reason. */
const DLQ_REASON_CHARS = 1000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const STATES: readonly string[] = ['pending', 'running', ...WATCHED_STATES];
const KIND_NAMES: readonly string[] = InterruptionEventKindSchema.options;
const ENVIRONMENTS: readonly string[] = EnvironmentClassSchema.options;
const INTERRUPTION_KEYS = ['eventId', 'kind', 'detailType', 'account', 'region', 'time', 'instanceIds', 'deadline', 'state', 'asg'];
const INSTANCE_INTERRUPTED_KEYS = Object.keys(InstanceInterruptedDetailSchema.shape);

// Plain assertions in the checks that run 10,000 times a suite: a fraction of the cost of expect().
function must(condition: unknown, what: string | (() => string)): asserts condition {
  if (!condition) throw new Error(typeof what === 'string' ? what : what());
}
const same = (actual: unknown, expected: unknown, what: string) => must(isDeepStrictEqual(actual, expected), () => `${what}: ${inspect(actual)}, expected ${inspect(expected)}`);
const nonEmptyString = (value: unknown) => typeof value === 'string' && value.length > 0;
const isValidDate = (value: unknown): value is Date => value instanceof Date && !Number.isNaN(value.getTime());
const own = (object: any, key: string) => (Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined);

function jsonOf(body: string): { json: true; raw: any } | { json: false } {
  try {
    return { json: true, raw: JSON.parse(body) };
  } catch {
    return { json: false };
  }
}

/** The deadline is the startTime as written, field by field (not through Date.parse, which is lenient). */
function mustBeStartTime(deadline: Date, startTime: unknown) {
  const match = typeof startTime === 'string' ? /^(?:(\w{3}), )?(\d{1,2}) (\w{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(startTime) : null;
  must(match, () => `startTime ${inspect(startTime)} is not an RFC 1123 date, yet the event was accepted`);
  const [, weekday, day, month, year, hours, minutes, seconds] = match;
  const d = deadline;
  same(
    [weekday ?? WEEKDAYS[d.getUTCDay()], Number(day), month, Number(year), Number(hours), Number(minutes), Number(seconds)],
    [WEEKDAYS[d.getUTCDay()], d.getUTCDate(), MONTHS[d.getUTCMonth()], d.getUTCFullYear(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()],
    `deadline ${d.toISOString()} for startTime ${inspect(startTime)}`,
  );
  same(d.getUTCMilliseconds(), 0, 'deadline milliseconds');
}

/** A well-formed InterruptionEvent that says what the body says. */
function mustBeWellFormedInterruption(event: InterruptionEvent, raw: any) {
  must(Object.getPrototypeOf(event) === Object.prototype, 'a plain object');
  for (const key of Object.keys(event)) must(INTERRUPTION_KEYS.includes(key), `unexpected key ${key}`);
  const kind = KIND_OF_DETAIL_TYPE[raw['detail-type']];
  must(kind, () => `accepted under an unhandled header ${inspect(raw['detail-type'])}`);
  same(raw.source, headerOf(kind).source, 'source of the accepted header');
  same(event.kind, kind, 'kind');
  must(KIND_NAMES.includes(event.kind), 'a known kind');
  same(event.detailType, raw['detail-type'], 'detailType');
  must(nonEmptyString(event.eventId), 'eventId not empty');
  same(event.eventId, raw.id, 'eventId');
  must(ACCOUNT.test(event.account), () => `account ${inspect(event.account)}`);
  same(event.account, raw.account, 'account');
  must(nonEmptyString(event.region), 'region not empty');
  same(event.region, raw.region, 'region');
  must(isValidDate(event.time), 'time a valid Date');
  same(event.time.getTime(), Date.parse(raw.time), 'time');
  must(Array.isArray(event.instanceIds) && event.instanceIds.length > 0, 'instanceIds not empty');
  for (const id of event.instanceIds) must(INSTANCE_ID.test(id), () => `instance id ${inspect(id)}`);
  if (event.deadline !== undefined) must(isValidDate(event.deadline), 'deadline a valid Date');
  const detail = raw.detail;
  switch (event.kind) {
    case 'spot-interruption':
      same(event.instanceIds, [detail['instance-id']], 'instanceIds');
      same(event.deadline?.getTime(), event.time.getTime() + SPOT_NOTICE_MS, 'deadline: two minutes after the warning');
      same([event.state, event.asg], [undefined, undefined], 'state, asg');
      break;
    case 'rebalance-recommendation':
      same(event.instanceIds, [detail['instance-id']], 'instanceIds');
      same([event.deadline, event.state, event.asg], [undefined, undefined, undefined], 'deadline, state, asg');
      break;
    case 'state-change':
      same(event.instanceIds, [detail['instance-id']], 'instanceIds');
      must(STATES.includes(event.state!), 'a known state');
      same(event.state, detail.state, 'state');
      same([event.deadline, event.asg], [undefined, undefined], 'deadline, asg');
      break;
    case 'scheduled-change':
      same(event.instanceIds, detail.affectedEntities.map((e: any) => e.entityValue).filter((v: string) => INSTANCE_ID.test(v)), 'instanceIds');
      must(isValidDate(event.deadline), 'deadline a valid Date');
      mustBeStartTime(event.deadline, detail.startTime);
      same([event.state, event.asg], [undefined, undefined], 'state, asg');
      break;
    case 'asg-termination':
      same(event.instanceIds, [detail.EC2InstanceId], 'instanceIds');
      same(event.asg, { name: detail.AutoScalingGroupName, hook: detail.LifecycleHookName, token: detail.LifecycleActionToken }, 'asg');
      for (const value of Object.values(event.asg!)) must(nonEmptyString(value), 'asg names not empty');
      same([event.deadline, event.state], [undefined, undefined], 'deadline, state');
      break;
  }
}

/** A well-formed InstanceInterrupted detail: the body's detail, its known fields only. */
function mustBeWellFormedInstanceInterrupted(event: InstanceInterruptedDetail, raw: any) {
  same([raw.source, raw['detail-type']], ['fleetwarden.interruption', 'InstanceInterrupted'], 'header');
  must(nonEmptyString(raw.id), 'id not empty');
  must(Object.getPrototypeOf(event) === Object.prototype, 'a plain object');
  for (const key of Object.keys(event)) must(INSTANCE_INTERRUPTED_KEYS.includes(key), `unexpected key ${key}`);
  for (const key of INSTANCE_INTERRUPTED_KEYS) {
    const written = own(raw.detail, key);
    same((event as any)[key], key === 'asg' && written ? { name: written.name, hook: written.hook, token: written.token } : written, key);
  }
  must(nonEmptyString(event.eventId), 'eventId not empty');
  must(KIND_NAMES.includes(event.kind), 'a known kind');
  must(INSTANCE_ID.test(event.instanceId), () => `instance id ${inspect(event.instanceId)}`);
  must(ACCOUNT.test(event.account), () => `account ${inspect(event.account)}`);
  must(nonEmptyString(event.region), 'region not empty');
  must(ENVIRONMENTS.includes(event.environment), 'a known environment');
  if (event.deadline !== undefined) must(isValidDate(new Date(event.deadline)), () => `deadline ${inspect(event.deadline)} a valid date`);
  if (event.lifecycle !== undefined) must(['spot', 'on-demand'].includes(event.lifecycle), 'a known lifecycle');
  if (event.state !== undefined) must(STATES.includes(event.state), 'a known state');
  if (event.clusterName !== undefined) must(event.clusterName.length > 0, 'clusterName not empty');
  if (event.asg !== undefined) for (const value of Object.values(event.asg)) must(typeof value === 'string', 'asg names are strings');
}

const PREFIXES = {
  interruption: ['body is not JSON: ', 'not an EventBridge event: ', 'unknown event "', 'malformed "', '"AWS Health Event" '],
  'instance-interrupted': ['body is not JSON: ', 'malformed InstanceInterrupted event: '],
};

/** A refusal the pipeline can park: Terminal.UnknownEvent or Terminal.MalformedEvent, with a reason the DLQ can carry. */
function mustBeParkableRefusal(error: TerminalError, body: string, consumer: keyof typeof PREFIXES) {
  must(error instanceof TerminalError, 'a TerminalError');
  must((consumer === 'interruption' ? ['Terminal.UnknownEvent', 'Terminal.MalformedEvent'] : ['Terminal.MalformedEvent']).includes(error.name), () => `error name ${error.name}`);
  const reason: unknown = error.message;
  must(typeof reason === 'string' && reason.slice(0, DLQ_REASON_CHARS).trim() !== '', 'a reason');
  must(
    PREFIXES[consumer].some((prefix) => reason.startsWith(prefix)),
    () => `reason ${inspect(reason.slice(0, 200))}`,
  );
  // What the parse step writes is in the character set of an SQS message attribute, and what it quotes of the body is short.
  const notJson = reason.startsWith('body is not JSON: ');
  must(SQS_CHARACTERS.test(reason), () => `reason ${inspect(reason.slice(0, 300))} has characters an SQS message attribute refuses`);
  if (notJson || error.name === 'Terminal.UnknownEvent') must(reason.length <= 400, () => `reason of ${reason.length} characters: ${inspect(reason.slice(0, 300))}`);
  // One line per bad field (zod): longer than the body only by a bounded factor; the DLQ keeps the first 1000 characters.
  must(reason.length <= DLQ_REASON_CHARS + 64 * body.length, () => `reason of ${reason.length} characters for a body of ${body.length}`);
}

function checkInterruption(testCase: Case): ParsedRecord<InterruptionEvent> {
  const parsed = parseRecordBody(testCase.body, parseInterruptionEvent);
  const json = jsonOf(testCase.body);
  if (testCase.valid) must(parsed.ok, () => `a valid event refused: ${!parsed.ok && parsed.error.message}`);
  if (testCase.truncated || !json.json) must(!parsed.ok && parsed.error.message.startsWith('body is not JSON: '), 'refused as not JSON');
  if (parsed.ok) {
    must(json.json, 'accepted JSON only');
    mustBeWellFormedInterruption(parsed.event, json.raw);
    return parsed;
  }
  mustBeParkableRefusal(parsed.error, testCase.body, 'interruption');
  if (json.json) {
    // Unknown exactly when the header is two strings that name no handled event.
    const raw = json.raw;
    const header = isContainer(raw) && !Array.isArray(raw) && typeof own(raw, 'source') === 'string' && typeof own(raw, 'detail-type') === 'string';
    const handled = header && HANDLED_EVENTS.some((h) => h.source === own(raw, 'source') && h.detailType === own(raw, 'detail-type'));
    same(parsed.error.name, header && !handled ? 'Terminal.UnknownEvent' : 'Terminal.MalformedEvent', 'unknown or malformed');
    if (!header) must(parsed.error.message.startsWith('not an EventBridge event: '), 'refused as not an EventBridge event');
  }
  return parsed;
}

function checkInstanceInterrupted(testCase: Case): ParsedRecord<InstanceInterruptedDetail> {
  const parsed = parseRecordBody(testCase.body, parseInstanceInterrupted);
  const json = jsonOf(testCase.body);
  if (testCase.valid) must(parsed.ok, () => `a valid event refused: ${!parsed.ok && parsed.error.message}`);
  if (testCase.truncated || !json.json) must(!parsed.ok && parsed.error.message.startsWith('body is not JSON: '), 'refused as not JSON');
  if (parsed.ok) {
    must(json.json, 'accepted JSON only');
    mustBeWellFormedInstanceInterrupted(parsed.event, json.raw);
    return parsed;
  }
  mustBeParkableRefusal(parsed.error, testCase.body, 'instance-interrupted');
  return parsed;
}

const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
function expectNoPrototypePollution() {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
  expect(({} as any).polluted).toBeUndefined();
}

// ---------------------------------------------------------------------------------------------
// The suites
// ---------------------------------------------------------------------------------------------

describe('the interruption ingest parse step, fuzzed (parseRecordBody(body, parseInterruptionEvent))', () => {
  for (const kind of KINDS) {
    it(`never throws on ${RUNS_PER_PARSER} generated and mutated "${headerOf(kind)['detail-type']}" bodies: a well-formed event that agrees with the body, or a parkable Terminal.UnknownEvent/MalformedEvent`, () => {
      fc.assert(
        fc.property(bodiesFor(kind), (testCase) => {
          checkInterruption(testCase);
        }),
        { numRuns: RUNS_PER_PARSER },
      );
      expectNoPrototypePollution();
    });
  }

  it('accepts each real fixture as it is', () => {
    for (const kind of KINDS) expect(checkInterruption({ how: 'fixture', body: TEXT[kind], valid: true })).toMatchObject({ ok: true, event: { kind } });
  });

  it('refuses a Health scheduled change whose startTime only V8 reads as a date (it read "x 1" as 2001-01-01, a quoted date as the date, 31 Feb as 3 Mar, 23:59:60 as 23:59:00)', () => {
    for (const startTime of ['x 1', 'foo 12', '"Sat, 05 Dec 2026 06:00:00 GMT"', '1', 'hello world 99999', 'Sat, 31 Feb 2026 06:00:00 GMT', 'Sat, 05 Dec 2026 23:59:60 GMT', 'Sat, 05 Dec 2026 24:00:00 GMT', 'Mon, 05 Dec 2026 06:00:00 GMT', '2026-12-05T06:00:00Z']) {
      const event = fixtureOf('scheduled-change');
      event.detail.startTime = startTime;
      expect(parseRecordBody(JSON.stringify(event), parseInterruptionEvent), startTime).toMatchObject({
        ok: false,
        error: { name: 'Terminal.MalformedEvent', message: expect.stringContaining('detail.startTime: startTime is not an RFC 1123 date') },
      });
    }
  });

  it('takes a Health startTime in RFC 1123 with or without the weekday, and a one-digit day', () => {
    for (const startTime of ['Sat, 05 Dec 2026 06:00:00 GMT', '05 Dec 2026 06:00:00 GMT', 'Sat, 5 Dec 2026 06:00:00 GMT']) {
      const event = fixtureOf('scheduled-change');
      event.detail.startTime = startTime;
      expect(parseRecordBody(JSON.stringify(event), parseInterruptionEvent), startTime).toMatchObject({ ok: true, event: { deadline: new Date('2026-12-05T06:00:00Z') } });
    }
  });

  it('quotes an unknown header in its reason cut short, with NUL, lone surrogates, U+FFFE and line breaks escaped (SQS refuses them in the DLQ reason attribute)', () => {
    const event = { ...fixtureOf('rebalance-recommendation'), 'detail-type': `EC2 Fleet Error\u0000\ud800\ufffe\n${'x'.repeat(100_000)}`, source: 'aws.ec2\u0000' };
    const parsed = parseRecordBody(JSON.stringify(event), parseInterruptionEvent);
    expect(parsed).toMatchObject({ ok: false, error: { name: 'Terminal.UnknownEvent' } });
    const reason = !parsed.ok ? parsed.error.message : '';
    expect(reason).toBe(`unknown event "EC2 Fleet Error\\u0000\\ud800\\ufffe\\u000a${'x'.repeat(61)}…" from aws.ec2\\u0000`);
    expect(SQS_CHARACTERS.test(reason)).toBe(true);
    // Plain values read as before.
    expect(parseRecordBody(JSON.stringify({ ...fixtureOf('rebalance-recommendation'), 'detail-type': 'EC2 Fleet Error' }), parseInterruptionEvent)).toMatchObject({
      ok: false,
      error: { message: 'unknown event "EC2 Fleet Error" from aws.ec2' },
    });
  });

  it('escapes the eventTypeCode it quotes when a scheduled change names no instance', () => {
    const event = fixtureOf('scheduled-change');
    event.detail.eventTypeCode = 'AWS_EC2_X\u0000';
    event.detail.affectedEntities = [{ entityValue: 'vol-0123456789abcdef0' }];
    expect(parseRecordBody(JSON.stringify(event), parseInterruptionEvent)).toMatchObject({
      ok: false,
      error: { name: 'Terminal.MalformedEvent', message: '"AWS Health Event" AWS_EC2_X\\u0000 names no EC2 instance among its affected entities' },
    });
  });
});

describe("the node drain parse step, fuzzed (parseRecordBody(body, parseInstanceInterrupted))", () => {
  it(`never throws on ${RUNS_PER_PARSER} generated and mutated InstanceInterrupted bodies: the body's well-formed detail, or a parkable Terminal.MalformedEvent`, () => {
    fc.assert(
      fc.property(bodiesFor('instance-interrupted'), (testCase) => {
        checkInstanceInterrupted(testCase);
      }),
      { numRuns: RUNS_PER_PARSER },
    );
    expectNoPrototypePollution();
  });
});

// ---------------------------------------------------------------------------------------------
// Whole batches through processSqsRecords
// ---------------------------------------------------------------------------------------------



const entry = (p: { body: string; reason: string; errorName: string }) => `${p.errorName}\u0000${p.reason}\u0000${p.body}`;

describe('whole batches of fuzzed and valid records through processSqsRecords', () => {
  const consumers = [
    { name: 'interruption ingest', parse: parseInterruptionEvent as (raw: unknown) => unknown, fuzzed: fc.oneof(...KINDS.map(bodiesFor)), fixtures: KINDS.map((kind) => TEXT[kind]) },
    { name: 'node drain', parse: parseInstanceInterrupted as (raw: unknown) => unknown, fuzzed: bodiesFor('instance-interrupted'), fixtures: [TEXT['instance-interrupted']] },
  ];
  for (const consumer of consumers) {
    it(`${consumer.name}: acts on every valid record, parks every fuzzed one that does not parse with its reason, and fails none (${BATCH_RUNS} batches)`, async () => {
      const recordArb = fc.oneof(consumer.fuzzed.map((c) => ({ body: c.body, valid: false })), fc.constantFrom(...consumer.fixtures).map((body) => ({ body, valid: true })));
      await fc.assert(
        fc.asyncProperty(fc.array(recordArb, { minLength: 1, maxLength: 10 }), fc.boolean(), async (records, parallel) => {
          // Prepare
          const deadLetters = new RecordingDeadLetters();
          const acted: string[] = [];
          const event = { Records: records.map((r, i) => sqsRecord(`m${i}`, r.body)) };
          const expected = records.map((r) => parseRecordBody(r.body, consumer.parse));

          // Act
          const response = await processSqsRecords(event, { parse: consumer.parse, act: async (_e, r) => void acted.push(r.messageId), deadLetters, parallel }, pipelineTools);

          // Assess
          expect(response.batchItemFailures).toEqual([]);
          records.forEach((r, i) => {
            if (r.valid) expect(expected[i]!.ok).toBe(true);
          });
          expect(acted.sort()).toEqual(event.Records.filter((_, i) => expected[i]!.ok).map((r) => r.messageId).sort());
          const refused = records.flatMap((r, i) => {
            const parsed = expected[i]!;
            return parsed.ok ? [] : [entry({ body: r.body, reason: parsed.error.message, errorName: parsed.error.name })];
          });
          expect(deadLetters.parked.map(entry).sort()).toEqual(refused.sort());
        }),
        { numRuns: BATCH_RUNS },
      );
    });
  }
});
