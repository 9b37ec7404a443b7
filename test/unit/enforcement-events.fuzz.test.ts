import { readFileSync } from 'node:fs';
import { inspect, isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENFORCEMENT_EVENTS, type EnforcementEvent, creatorOf, parseEnforcementEvent } from '../../functions/enforcement/events';
import { TerminalError } from '../../functions/shared/errors';
import { type ParsedRecord, parseRecordBody } from '../../functions/shared/sqs-records';
import { sqsText } from '../../functions/shared/validation';

/**
 * Fuzzing of the enforcer's parse step as its SQS pipeline runs it:
 * `parseRecordBody(body, parseEnforcementEvent)`. Bodies are the real fixtures (test/events) and
 * valid events generated from them (an instance entered `running`; a successful RunInstances
 * call via CloudTrail), then mutated at a random path (replaced, deleted, inserted, wrapped,
 * retyped), given an errorCode or an empty instancesSet, truncated, put under another header,
 * plus random JSON and random strings. Whatever the body, the parse step never throws, and
 * either gives a normalized EnforcementEvent that agrees with the body, or a
 * Terminal.UnknownEvent / Terminal.MalformedEvent whose reason can be parked with the record.
 */

const RUNS_PER_PARSER = 10_000;

// ---------------------------------------------------------------------------------------------
// The events
// ---------------------------------------------------------------------------------------------

type Target = 'running' | 'launched';
const FIXTURE_OF: Record<Target, string> = { running: 'state-change-running', launched: 'cloudtrail-run-instances' };
const TEXT: Record<Target, string> = {
  running: readFileSync(new URL(`../events/${FIXTURE_OF.running}.json`, import.meta.url), 'utf8'),
  launched: readFileSync(new URL(`../events/${FIXTURE_OF.launched}.json`, import.meta.url), 'utf8'),
};
const TARGETS: Target[] = ['running', 'launched'];
const fixtureOf = (target: Target): Record<string, any> => JSON.parse(TEXT[target]);
const headerOf = (target: Target) => {
  const { source, 'detail-type': detailType } = fixtureOf(target);
  return { source: source as string, 'detail-type': detailType as string };
};
const KIND_OF_DETAIL_TYPE: Record<string, Target> = { 'EC2 Instance State-change Notification': 'running', 'AWS API Call via CloudTrail': 'launched' };

/** Headers to put a detail under: both handled ones, other AWS events, crossed pairs, near misses. */
const HEADERS = [
  ...TARGETS.map(headerOf),
  { source: 'aws.ec2', 'detail-type': 'EC2 Spot Instance Interruption Warning' },
  { source: 'aws.ec2', 'detail-type': 'EC2 Instance Rebalance Recommendation' },
  { source: 'aws.autoscaling', 'detail-type': 'AWS API Call via CloudTrail' },
  { source: 'aws.iam', 'detail-type': 'AWS API Call via CloudTrail' },
  { source: 'aws.health', 'detail-type': 'EC2 Instance State-change Notification' },
  { source: 'fleetwarden.interruption', 'detail-type': 'InstanceInterrupted' },
  { source: 'AWS.EC2', 'detail-type': 'AWS API Call via CloudTrail' },
  { source: 'aws.ec2 ', 'detail-type': 'EC2 Instance State-change Notification' },
  { source: 'aws.ec2', 'detail-type': 'AWS API Call Via CloudTrail' },
  { source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification\u0000' },
  { source: 'aws.ec2', 'detail-type': '' },
];

// ---------------------------------------------------------------------------------------------
// Values: valid ones, and the nasty ones the mutations put in
// ---------------------------------------------------------------------------------------------

const hex = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max });
const instanceIdArb = fc.oneof(hex(17, 17), hex(8, 8), hex(9, 16)).map((h) => `i-${h}`);
const accountArb = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 12, maxLength: 12 });
const regionArb = fc.constantFrom('us-east-1', 'eu-west-3', 'ap-southeast-2', 'us-gov-west-1');
const dateArb = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true });

/** An ISO 8601 date-time with an offset, with or without milliseconds, as EventBridge writes them. */
const isoTimeArb = fc.tuple(dateArb, fc.constantFrom('Z', '+00:00', '+05:30', '-08:00', '+14:00', '-12:00'), fc.boolean()).map(([date, offset, millis]) => {
  const minutes = offset === 'Z' ? 0 : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(date.getTime() + minutes * 60_000).toISOString();
  return `${millis ? local.slice(0, 23) : local.slice(0, 19)}${offset}`;
});

const arnArb = fc.oneof(
  accountArb.map((a) => `arn:aws:iam::${a}:user/alice`),
  fc.tuple(accountArb, fc.string({ minLength: 1, maxLength: 30 })).map(([a, name]) => `arn:aws:iam::${a}:role/${name}`),
  fc.tuple(accountArb, fc.stringMatching(/^[A-Za-z0-9+=,.@-]{1,64}$/)).map(([a, session]) => `arn:aws:sts::${a}:assumed-role/dev/${session}`),
  accountArb.map((a) => `arn:aws:iam::${a}:root`),
);

/** userIdentity as CloudTrail writes it for the principals that call RunInstances. */
const userIdentityArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ type: fc.constant('IAMUser'), principalId: fc.constant('AIDAEXAMPLEALICE0001'), arn: arnArb, accountId: accountArb, userName: fc.constant('alice') }, { requiredKeys: ['type'] }),
  fc.record({
    type: fc.constant('AssumedRole'),
    principalId: fc.constant('AROAEXAMPLE:session'),
    arn: arnArb,
    sessionContext: fc.record({
      sessionIssuer: fc.record({ type: fc.constant('Role'), arn: arnArb, userName: fc.constant('dev') }, { requiredKeys: ['type'] }),
      attributes: fc.constant({ creationDate: '2026-12-03T09:00:00Z', mfaAuthenticated: 'false' }),
    }),
    invokedBy: fc.constantFrom('autoscaling.amazonaws.com', 'ec2fleet.amazonaws.com', 'cloudformation.amazonaws.com'),
  }, { requiredKeys: ['type', 'sessionContext'] }),
  fc.record({ type: fc.constant('AWSService'), invokedBy: fc.constantFrom('autoscaling.amazonaws.com', 'spotfleet.amazonaws.com') }),
  fc.record({ type: fc.constant('Root'), principalId: accountArb, arn: accountArb.map((a) => `arn:aws:iam::${a}:root`) }, { requiredKeys: ['type'] }),
);

const DETAILS: Record<Target, fc.Arbitrary<Record<string, unknown>>> = {
  running: fc.record({ 'instance-id': instanceIdArb }),
  launched: fc
    .tuple(userIdentityArb, fc.array(instanceIdArb, { minLength: 1, maxLength: 5 }), fc.nat(), fc.boolean())
    .map(([userIdentity, ids, dupAt, dup]) => {
      const all = dup ? [...ids, ids[dupAt % ids.length]!] : ids;
      return {
        userIdentity,
        responseElements: {
          requestId: '9f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8',
          reservationId: 'r-0a1b2c3d4e5f60718',
          instancesSet: { items: all.map((instanceId) => ({ instanceId, imageId: 'ami-12345678', instanceState: { code: 0, name: 'pending' }, instanceType: 'm5.large' })) },
        },
      };
    }),
};

const envelopeArb = fc.record({ id: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 40 })), account: accountArb, time: isoTimeArb, region: regionArb, dropResources: fc.boolean(), dropVersion: fc.boolean() });

/** A valid event of one kind: its real fixture with generated ids, accounts, times and details. */
function validEvent(target: Target): fc.Arbitrary<Record<string, any>> {
  return fc.tuple(envelopeArb, DETAILS[target]).map(([envelope, detail]) => {
    const event = fixtureOf(target);
    Object.assign(event, { id: envelope.id, account: envelope.account, time: envelope.time, region: envelope.region });
    if (envelope.dropResources) delete event.resources;
    if (envelope.dropVersion) delete event.version;
    Object.assign(event.detail, detail);
    return event;
  });
}

/** UTF-16 code units, any: lone surrogates, NUL and other control characters included. */
const utf16String = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });

const WEIRD_STRINGS = [
  '', ' ', '\u0000', 'i-0c1d2e3f\u0000', '\ud800', '\udfff', '\ud83d', 'i-0c1d2e3f\udc00', '\u202e', '\u202eevil\u202c', '\u200f', 'مرحبا بالعالم', 'שלום', '\ufeff', '\uffff', '\ufffe', '😀', 'e\u0301',
  '\n', '\r\n', '\t', 'null', 'undefined', 'true', '0', '-1', '1e309', 'NaN', '__proto__', 'constructor', 'prototype', '{}', '[]', '"', '\\', '<script>alert(1)</script>', '%s%n%x', "' OR 1=1 --", '${jndi:ldap://x}',
];
/** Values one character away from valid ones: ids, accounts, dates, literals. */
const NEAR_MISSES = [
  'i-', 'i-0', 'i-0c1d2e3', 'i-0c1d2e3f4a5b607180', 'i-0C1D2E3F4A5B60718', 'i-0c1d2e3f4a5b60718\n', ' i-0c1d2e3f4a5b60718', 'i-0c1d2e3f4a5b60718 ', 'I-0c1d2e3f', 'i-０１２３４５６７', 'i-0123456g', 'i_0c1d2e3f',
  '33333333333', '3333333333333', '333333333333\n', '３３３３３３３３３３３３', '-33333333333', '33333333333a',
  '2026-02-29T10:00:00Z', '2026-02-30T10:00:00Z', '2026-12-03T24:00:00Z', '2026-12-03T23:59:60Z', '2026-12-03T09:14:58', '2026-12-03', '2026-12-03 09:14:58Z', '2026-12-03T09:14Z', '2026-12-03T09:14:58+24:00', '+275760-09-13T00:00:00Z', '1795403414968',
  'Running', 'running ', 'RUNNING', 'pending', 'stopped', 'runInstances', 'RunInstances ', 'StartInstances', 'ec2.amazonaws.com ', 'EC2.amazonaws.com', 'autoscaling.amazonaws.com', 'Client.UnauthorizedOperation', 'Server.InsufficientInstanceCapacity',
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
    '{"__proto__":{"polluted":true,"instance-id":"i-0c1d2e3f4a5b60718","state":"running","source":"aws.ec2"}}',
    '{"__proto__":{"instancesSet":{"items":[{"instanceId":"i-0c1d2e3f4a5b60718"}]}}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"__proto__":[]}',
    '{"__proto__":null}',
    '{"toString":"x","valueOf":1,"hasOwnProperty":null}',
  )
  .map((text) => JSON.parse(text) as unknown);

/** A valid value of some other field or event: a detail where a string goes, an id list where an object goes, etc. */
const validElsewhereArb: fc.Arbitrary<unknown> = fc.oneof(instanceIdArb, accountArb, isoTimeArb, arnArb, userIdentityArb, ...TARGETS.map((t) => DETAILS[t]), fc.array(fc.record({ instanceId: instanceIdArb }), { maxLength: 3 }));

const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e21, 333333333333, Number.MAX_SAFE_INTEGER + 2, 1795403414968, 0.5)) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], {}, [null], [{}], ['i-0c1d2e3f4a5b60718'], [{ instanceId: 'i-0c1d2e3f4a5b60718' }], { items: [] }, { instanceId: 'i-0c1d2e3f4a5b60718' }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: prototypeBaitArb },
  { weight: 1, arbitrary: deepArb },
  { weight: 2, arbitrary: validElsewhereArb },
);

const keyArb = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', 'id', 'source', 'detail-type', 'detail', 'account', 'time', 'region', 'resources'),
  fc.constantFrom('instance-id', 'state', 'eventSource', 'eventName', 'errorCode', 'errorMessage', 'userIdentity', 'arn', 'invokedBy', 'sessionContext', 'sessionIssuer', 'responseElements', 'instancesSet', 'items', 'instanceId'),
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
const isRecord = (value: unknown): value is Record<string, any> => isContainer(value) && !Array.isArray(value);
/** A copy as JSON.parse makes it: own "__proto__" keys stay own keys. */
const copy = <T>(value: T): T => (value === undefined ? value : JSON.parse(JSON.stringify(value)));
/** Sets an own property, even "__proto__" (plain assignment would set the prototype). */
const setOwn = (target: object, key: string | number, value: unknown) => Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
const own = (object: unknown, key: string): any => (isContainer(object) && Object.prototype.hasOwnProperty.call(object, key) ? (object as any)[key] : undefined);
const hasOwn = (object: unknown, key: string) => isContainer(object) && Object.prototype.hasOwnProperty.call(object, key);

function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((item, i) => pathsOf(item, [...at, i], out));
  else if (isContainer(value)) for (const key of Object.keys(value)) pathsOf((value as Record<string, unknown>)[key], [...at, key], out);
  return out;
}

function valueAt(root: unknown, path: Path): any {
  let node: any = root;
  for (const key of path) node = isContainer(node) && Object.prototype.hasOwnProperty.call(node, key) ? (node as any)[key] : undefined;
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
// Bodies: what an SQS record of the enforcer may carry
// ---------------------------------------------------------------------------------------------

interface Case {
  how: string;
  body: string;
  /** A valid event: must be accepted. */
  valid?: boolean;
  /** Cut short: must be refused as not JSON. */
  truncated?: boolean;
  /** Must be refused, as malformed. */
  malformed?: boolean;
}

/** Changes the enforcer's rules filter out, and its parser must refuse when one arrives anyway. */
const REFUSED_DETAIL_CHANGES: Record<Target, fc.Arbitrary<{ how: string; change: (detail: Record<string, any>) => void }>> = {
  running: fc.oneof(
    fc.constantFrom('pending', 'stopping', 'stopped', 'shutting-down', 'terminated', 'Running', 'running ', '', 'RUNNING').map((state) => ({ how: `state ${inspect(state)}`, change: (d: Record<string, any>) => void (d.state = state) })),
    fc.constant({ how: 'no state', change: (d: Record<string, any>) => void delete d.state }),
    fc.constant({ how: 'no instance-id', change: (d: Record<string, any>) => void delete d['instance-id'] }),
  ),
  launched: fc.oneof(
    fc
      .constantFrom<unknown>('Client.UnauthorizedOperation', 'Server.InsufficientInstanceCapacity', 'Client.DryRunOperation', '', null, 0, false, {}, [])
      .map((errorCode) => ({ how: `errorCode ${inspect(errorCode)}`, change: (d: Record<string, any>) => Object.assign(d, { errorCode, errorMessage: 'You are not authorized to perform this operation.' }) })),
    fc.constant({ how: 'empty instancesSet.items', change: (d: Record<string, any>) => void (d.responseElements.instancesSet.items = []) }),
    fc.constant({ how: 'no responseElements (a failed call)', change: (d: Record<string, any>) => void (d.responseElements = null) }),
    fc.constant({ how: '1001 instances', change: (d: Record<string, any>) => void (d.responseElements.instancesSet.items = Array.from({ length: 1001 }, (_, i) => ({ instanceId: `i-${i.toString(16).padStart(17, '0')}` }))) }),
    fc.constantFrom('StartInstances', 'runInstances', 'RunInstances ', 'TerminateInstances').map((eventName) => ({ how: `eventName ${eventName}`, change: (d: Record<string, any>) => void (d.eventName = eventName) })),
    fc.constantFrom('autoscaling.amazonaws.com', 'EC2.amazonaws.com', '').map((eventSource) => ({ how: `eventSource ${inspect(eventSource)}`, change: (d: Record<string, any>) => void (d.eventSource = eventSource) })),
    fc.constantFrom('', 'x'.repeat(65), null).map((type) => ({ how: `userIdentity.type ${inspect(type)}`, change: (d: Record<string, any>) => void (d.userIdentity.type = type) })),
    fc.constant({ how: 'no userIdentity', change: (d: Record<string, any>) => void delete d.userIdentity }),
  ),
};

function bodiesFor(target: Target): fc.Arbitrary<Case> {
  const valid = validEvent(target);
  const validOrFixture = fc.oneof(valid, fc.constant(null).map(() => fixtureOf(target)));
  const other = validEvent(TARGETS.find((t) => t !== target)!);
  const mutated = fc.tuple(validOrFixture, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([event, mutations]) => mutate(event, mutations));
  const anyField = (good: fc.Arbitrary<unknown>) => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: nastyValue });

  return fc.oneof(
    { weight: 10, arbitrary: valid.map((event): Case => ({ how: 'valid', body: render(event), valid: true })) },
    {
      weight: 5,
      arbitrary: valid.map((event): Case => {
        // Unknown fields anywhere are not the parser's business: kept out of the event, never refused.
        event.detail.extra = { nested: ['x'] };
        event.extra = 'x'.repeat(10_000);
        if (target === 'launched') Object.assign(event.detail.userIdentity, { accountId: '333333333333', accessKeyId: 'AKIAEXAMPLE', unknown: null });
        return { how: 'valid with extra fields', body: render(event), valid: true };
      }),
    },
    {
      weight: 8,
      arbitrary: fc.tuple(valid, REFUSED_DETAIL_CHANGES[target]).map(([event, { how, change }]): Case => {
        change(event.detail);
        return { how, body: render(event), malformed: true };
      }),
    },
    { weight: 35, arbitrary: mutated.map((event): Case => ({ how: 'mutated', body: render(event) })) },
    {
      weight: 8,
      arbitrary: fc.oneof(
        fc.tuple(valid, fc.constantFrom(...HEADERS)).map(([event, header]): Case => ({ how: 'this detail under another header', body: render({ ...event, ...header }) })),
        fc.tuple(other, fc.constant(headerOf(target))).map(([event, header]): Case => ({ how: "the other event's detail under this header", body: render({ ...event, ...header }) })),
      ),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.constantFrom('__proto__', 'constructor'), fc.boolean()).map(([event, picks, holder, inDetail]): Case => {
        const from: Record<string, unknown> = inDetail && isRecord(event.detail) ? event.detail : event;
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
      weight: 10,
      arbitrary: fc
        .tuple(fc.oneof(valid.map(render), mutated.map(render), fc.constant(TEXT[target])), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }))
        .map(([text, at]): Case => {
          const end = text.trimEnd().length;
          return { how: 'truncated', body: text.slice(0, Math.floor(at * end)), truncated: /^[{["]/.test(text) };
        }),
    },
    {
      weight: 6,
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
            detail: fc.oneof(DETAILS[target], fc.jsonValue({ maxDepth: 3 }), nastyValue),
          },
          { requiredKeys: [] },
        )
        .map((fields): Case => ({ how: 'random fields under this header', body: render({ ...fields, ...headerOf(target) }) })),
    },
    { weight: 4, arbitrary: fc.jsonValue().map((value): Case => ({ how: 'random JSON', body: JSON.stringify(value) })) },
    {
      weight: 4,
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
/** sqsText(creator, 512): 512 characters and the ellipsis. */
const MAX_CREATOR_CHARS = 513;
const EVENT_KEYS = ['eventId', 'kind', 'account', 'region', 'time', 'instanceIds', 'creator'];
const REFUSAL_PREFIXES = ['body is not JSON: ', 'not an EventBridge event: ', 'unknown event "', 'malformed "'];

// Plain assertions in the checks that run 10,000 times a suite: a fraction of the cost of expect().
function must(condition: unknown, what: string | (() => string)): asserts condition {
  if (!condition) throw new Error(typeof what === 'string' ? what : what());
}
const same = (actual: unknown, expected: unknown, what: string) => must(isDeepStrictEqual(actual, expected), () => `${what}: ${inspect(actual)}, expected ${inspect(expected)}`);
const nonEmptyString = (value: unknown) => typeof value === 'string' && value.length > 0;

function jsonOf(body: string): { json: true; raw: any } | { json: false } {
  try {
    return { json: true, raw: JSON.parse(body) };
  } catch {
    return { json: false };
  }
}

/** Who launched, as documented on creatorOf: the principal ARN, else the role it assumed, its id, its name, its type (an empty one names no one); "via" the service that called for it. */
function expectedCreator(identity: any): string {
  const who = [own(identity, 'arn'), own(own(own(identity, 'sessionContext'), 'sessionIssuer'), 'arn'), own(identity, 'principalId'), own(identity, 'userName')].find((v) => v !== undefined && v !== '') ?? own(identity, 'type');
  const via = own(identity, 'invokedBy');
  return sqsText(via ? `${who} via ${via}` : who, 512);
}

/** A normalized EnforcementEvent that says what the body says. */
function mustBeWellFormed(event: EnforcementEvent, raw: any) {
  must(Object.getPrototypeOf(event) === Object.prototype, 'a plain object');
  for (const key of Object.keys(event)) must(EVENT_KEYS.includes(key), `unexpected key ${key}`);
  const kind = KIND_OF_DETAIL_TYPE[own(raw, 'detail-type')];
  must(kind, () => `accepted under an unhandled header ${inspect(own(raw, 'detail-type'))}`);
  same(own(raw, 'source'), 'aws.ec2', 'source of the accepted header');
  same(event.kind, kind, 'kind');
  must(nonEmptyString(event.eventId), 'eventId not empty');
  same(event.eventId, raw.id, 'eventId');
  must(ACCOUNT.test(event.account), () => `account ${inspect(event.account)}`);
  same(event.account, raw.account, 'account');
  must(nonEmptyString(event.region), 'region not empty');
  same(event.region, raw.region, 'region');
  must(event.time instanceof Date && !Number.isNaN(event.time.getTime()), () => `time ${inspect(raw.time)} a valid Date`);
  same(event.time.getTime(), Date.parse(raw.time), 'time');
  must(Array.isArray(event.instanceIds) && event.instanceIds.length > 0, 'instanceIds not empty');
  for (const id of event.instanceIds) must(typeof id === 'string' && INSTANCE_ID.test(id), () => `instance id ${inspect(id)}`);
  same(new Set(event.instanceIds).size, event.instanceIds.length, 'instanceIds without duplicates');
  const detail = raw.detail;
  if (event.kind === 'running') {
    same(own(detail, 'state'), 'running', 'state of an accepted state change');
    same(event.instanceIds, [own(detail, 'instance-id')], 'instanceIds');
    must(!('creator' in event), 'no creator on a state change');
  } else {
    same([own(detail, 'eventSource'), own(detail, 'eventName')], ['ec2.amazonaws.com', 'RunInstances'], 'eventSource, eventName');
    must(!hasOwn(detail, 'errorCode'), 'accepted a RunInstances call with an errorCode');
    const items: any[] = detail.responseElements.instancesSet.items;
    must(items.length >= 1 && items.length <= 1000, 'between 1 and 1000 items');
    same(event.instanceIds, [...new Set(items.map((i) => i.instanceId))], 'instanceIds: the items, deduplicated, in order');
    must(typeof event.creator === 'string', 'a creator');
    must(event.creator.length <= MAX_CREATOR_CHARS, () => `creator of ${event.creator!.length} characters`);
    must(SQS_CHARACTERS.test(event.creator), () => `creator ${inspect(event.creator!.slice(0, 100))} has characters SQS refuses`);
    same(event.creator, expectedCreator(detail.userIdentity), 'creator');
  }
}

/** A refusal the pipeline can park: Terminal.UnknownEvent or Terminal.MalformedEvent, with a reason the DLQ can carry. */
function mustBeParkableRefusal(error: TerminalError, body: string) {
  must(error instanceof TerminalError, 'a TerminalError');
  must(['Terminal.UnknownEvent', 'Terminal.MalformedEvent'].includes(error.name), () => `error name ${error.name}`);
  const reason: unknown = error.message;
  must(typeof reason === 'string' && reason.slice(0, DLQ_REASON_CHARS).trim() !== '', 'a reason');
  must(
    REFUSAL_PREFIXES.some((prefix) => reason.startsWith(prefix)),
    () => `reason ${inspect(reason.slice(0, 200))}`,
  );
  must(SQS_CHARACTERS.test(reason), () => `reason ${inspect(reason.slice(0, 300))} has characters an SQS message attribute refuses`);
  if (reason.startsWith('body is not JSON: ') || error.name === 'Terminal.UnknownEvent') must(reason.length <= 400, () => `reason of ${reason.length} characters: ${inspect(reason.slice(0, 300))}`);
  must(reason.length <= DLQ_REASON_CHARS + 64 * body.length, () => `reason of ${reason.length} characters for a body of ${body.length}`);
}

function checkCase(testCase: Case): ParsedRecord<EnforcementEvent> {
  const parsed = parseRecordBody(testCase.body, parseEnforcementEvent);
  const json = jsonOf(testCase.body);
  if (testCase.valid) must(parsed.ok, () => `a valid event (${testCase.how}) refused: ${!parsed.ok && parsed.error.message}`);
  if (testCase.malformed) must(!parsed.ok && parsed.error.name === 'Terminal.MalformedEvent', () => `${testCase.how}: accepted, or refused as other than malformed`);
  if (testCase.truncated || !json.json) must(!parsed.ok && parsed.error.message.startsWith('body is not JSON: '), 'refused as not JSON');
  if (parsed.ok) {
    must(json.json, 'accepted JSON only');
    mustBeWellFormed(parsed.event, json.raw);
    return parsed;
  }
  mustBeParkableRefusal(parsed.error, testCase.body);
  if (json.json) {
    // Unknown exactly when the header is two strings that name no handled event.
    const raw = json.raw;
    const header = isRecord(raw) && typeof own(raw, 'source') === 'string' && typeof own(raw, 'detail-type') === 'string';
    const handled = header && ENFORCEMENT_EVENTS.some((h) => h.source === own(raw, 'source') && h.detailType === own(raw, 'detail-type'));
    same(parsed.error.name, header && !handled ? 'Terminal.UnknownEvent' : 'Terminal.MalformedEvent', 'unknown or malformed');
    if (!header) must(parsed.error.message.startsWith('not an EventBridge event: '), 'refused as not an EventBridge event');
    if (handled) must(parsed.error.message.startsWith(`malformed "${own(raw, 'detail-type')}" event: `), 'refused as a malformed event of its type');
  }
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

describe('the enforcer parse step, fuzzed (parseRecordBody(body, parseEnforcementEvent))', () => {
  for (const target of TARGETS) {
    it(`never throws on ${RUNS_PER_PARSER} generated and mutated "${headerOf(target)['detail-type']}" bodies: a normalized event that agrees with the body, or a parkable Terminal.UnknownEvent/MalformedEvent`, () => {
      const seen = new Map<string, { ok: number; refused: number }>();
      fc.assert(
        fc.property(bodiesFor(target), (testCase) => {
          const parsed = checkCase(testCase);
          const tally = seen.get(testCase.how) ?? { ok: 0, refused: 0 };
          tally[parsed.ok ? 'ok' : 'refused'] += 1;
          seen.set(testCase.how, tally);
        }),
        { numRuns: RUNS_PER_PARSER },
      );
      expectNoPrototypePollution();
      // The generator reached both outcomes, and the mutations got some events through.
      const total = [...seen.values()].reduce((sum, t) => ({ ok: sum.ok + t.ok, refused: sum.refused + t.refused }), { ok: 0, refused: 0 });
      expect(total.ok + total.refused).toBe(RUNS_PER_PARSER);
      expect(total.ok).toBeGreaterThan(RUNS_PER_PARSER / 10);
      expect(total.refused).toBeGreaterThan(RUNS_PER_PARSER / 2);
      expect(seen.get('mutated')!.ok).toBeGreaterThan(0);
    });
  }

  it('accepts each real fixture as it is', () => {
    expect(checkCase({ how: 'fixture', body: TEXT.running, valid: true })).toEqual({
      ok: true,
      event: { eventId: '5d1a3e2c-8f4b-4c1e-9a7d-2b6c0e9f1a34', kind: 'running', account: '333333333333', region: 'us-east-1', time: new Date('2026-12-03T09:15:02Z'), instanceIds: ['i-0c1d2e3f4a5b60718'] },
    });
    expect(checkCase({ how: 'fixture', body: TEXT.launched, valid: true })).toMatchObject({ ok: true, event: { kind: 'launched', instanceIds: ['i-0c1d2e3f4a5b60718'] } });
  });
});

// ---------------------------------------------------------------------------------------------
// Unit cases
// ---------------------------------------------------------------------------------------------

const parse = (event: unknown) => parseRecordBody(JSON.stringify(event), parseEnforcementEvent);
const runInstances = (detail: Record<string, unknown>) => {
  const event = fixtureOf('launched');
  Object.assign(event.detail, detail);
  return event;
};
const items = (...ids: string[]) => ({ instancesSet: { items: ids.map((instanceId) => ({ instanceId, imageId: 'ami-12345678', instanceState: { code: 0, name: 'pending' } })) } });

describe('a RunInstances call via CloudTrail', () => {
  it('names an IAM user by its ARN, with the instance it launched', () => {
    // Arrange: the fixture, IAMUser alice.
    const event = fixtureOf('launched');
    // Act
    const parsed = parse(event);
    // Assert
    expect(parsed).toEqual({
      ok: true,
      event: {
        eventId: 'c0a8f1e2-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
        kind: 'launched',
        account: '333333333333',
        region: 'us-east-1',
        time: new Date('2026-12-03T09:14:58Z'),
        instanceIds: ['i-0c1d2e3f4a5b60718'],
        creator: 'arn:aws:iam::333333333333:user/alice',
      },
    });
  });

  it('names an assumed role by its session ARN, and by the role it assumed when the session has no ARN', () => {
    const sessionContext = { sessionIssuer: { type: 'Role', principalId: 'AROAEXAMPLE', arn: 'arn:aws:iam::333333333333:role/dev', accountId: '333333333333', userName: 'dev' }, attributes: { creationDate: '2026-12-03T09:00:00Z', mfaAuthenticated: 'false' } };
    const withArn = runInstances({ userIdentity: { type: 'AssumedRole', principalId: 'AROAEXAMPLE:bob', arn: 'arn:aws:sts::333333333333:assumed-role/dev/bob', sessionContext } });
    expect(parse(withArn)).toMatchObject({ ok: true, event: { creator: 'arn:aws:sts::333333333333:assumed-role/dev/bob' } });
    const withoutArn = runInstances({ userIdentity: { type: 'AssumedRole', sessionContext } });
    expect(parse(withoutArn)).toMatchObject({ ok: true, event: { creator: 'arn:aws:iam::333333333333:role/dev' } });
  });

  it('names the service that called for the principal ("… via autoscaling.amazonaws.com")', () => {
    const event = runInstances({
      userIdentity: {
        type: 'AssumedRole',
        arn: 'arn:aws:sts::333333333333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling',
        sessionContext: { sessionIssuer: { type: 'Role', arn: 'arn:aws:iam::333333333333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling' } },
        invokedBy: 'autoscaling.amazonaws.com',
      },
    });
    expect(parse(event)).toMatchObject({ ok: true, event: { creator: 'arn:aws:sts::333333333333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling via autoscaling.amazonaws.com' } });
    expect(parse(runInstances({ userIdentity: { type: 'AWSService', invokedBy: 'autoscaling.amazonaws.com' } }))).toMatchObject({ ok: true, event: { creator: 'AWSService via autoscaling.amazonaws.com' } });
  });

  it('lists every instance it launched once, in the order of the response', () => {
    const event = runInstances({ responseElements: items('i-0000000000000000b', 'i-0000000000000000a', 'i-0000000000000000b', 'i-0000000a', 'i-0000000000000000a') });
    expect(parse(event)).toMatchObject({ ok: true, event: { instanceIds: ['i-0000000000000000b', 'i-0000000000000000a', 'i-0000000a'] } });
  });

  it('cuts a huge creator to 512 characters and an ellipsis, with characters SQS refuses escaped', () => {
    const event = runInstances({ userIdentity: { type: 'IAMUser', arn: `arn:aws:iam::333333333333:user/${'\u0000'.repeat(10)}${'x'.repeat(2000)}`, invokedBy: 'autoscaling.amazonaws.com' } });
    const parsed = parse(event);
    const creator = parsed.ok ? parsed.event.creator! : '';
    expect(creator).toHaveLength(513);
    expect(creator.startsWith(`arn:aws:iam::333333333333:user/${'\\u0000'.repeat(10)}xxx`)).toBe(true);
    expect(creator.endsWith('x…')).toBe(true);
  });

  it('refuses a failed call (errorCode present, whatever its value) as malformed: it launched nothing', () => {
    for (const errorCode of ['Client.UnauthorizedOperation', '', null]) {
      expect(parse(runInstances({ errorCode, errorMessage: 'You are not authorized to perform this operation.' })), inspect(errorCode)).toMatchObject({
        ok: false,
        error: { name: 'Terminal.MalformedEvent', message: expect.stringContaining('detail.errorCode') },
      });
    }
    expect(parse(runInstances({ errorCode: 'Client.UnauthorizedOperation' }))).toMatchObject({ ok: false, error: { message: expect.stringContaining('a failed RunInstances call launched nothing') } });
  });

  it('refuses a call whose instancesSet.items is empty, or whose ids are not instance ids', () => {
    expect(parse(runInstances({ responseElements: items() }))).toMatchObject({ ok: false, error: { name: 'Terminal.MalformedEvent', message: expect.stringContaining('detail.responseElements.instancesSet.items') } });
    expect(parse(runInstances({ responseElements: items('i-0000000000000000a', 'i-XYZ') }))).toMatchObject({ ok: false, error: { name: 'Terminal.MalformedEvent', message: expect.stringContaining('detail.responseElements.instancesSet.items.1.instanceId') } });
  });

  it('refuses another API call under the same header (StartInstances) as malformed', () => {
    expect(parse(runInstances({ eventName: 'StartInstances' }))).toMatchObject({ ok: false, error: { name: 'Terminal.MalformedEvent', message: expect.stringMatching(/^malformed "AWS API Call via CloudTrail" event: detail\.eventName/) } });
  });
});

describe('an instance state change', () => {
  it('is accepted for running only; another state under the same header is malformed', () => {
    expect(parse(fixtureOf('running'))).toMatchObject({ ok: true, event: { kind: 'running', instanceIds: ['i-0c1d2e3f4a5b60718'] } });
    const stopped = fixtureOf('running');
    stopped.detail.state = 'stopped';
    expect(parse(stopped)).toMatchObject({ ok: false, error: { name: 'Terminal.MalformedEvent', message: expect.stringContaining('detail.state') } });
  });

  it('is an unknown event under another detail-type or source, quoted in the reason', () => {
    expect(parse({ ...fixtureOf('running'), 'detail-type': 'EC2 Spot Instance Interruption Warning' })).toMatchObject({
      ok: false,
      error: { name: 'Terminal.UnknownEvent', message: 'unknown event "EC2 Spot Instance Interruption Warning" from aws.ec2' },
    });
    expect(parse({ ...fixtureOf('running'), source: 'aws.health' })).toMatchObject({ ok: false, error: { name: 'Terminal.UnknownEvent' } });
  });
});

describe('ENFORCEMENT_EVENTS: the rules the member and home stacks derive', () => {
  it('holds the state-change pattern (state running) and the CloudTrail pattern (RunInstances from ec2.amazonaws.com, errorCode absent)', () => {
    expect(ENFORCEMENT_EVENTS).toEqual([
      {
        source: 'aws.ec2',
        detailType: 'EC2 Instance State-change Notification',
        pattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'], detail: { state: ['running'] } },
      },
      {
        source: 'aws.ec2',
        detailType: 'AWS API Call via CloudTrail',
        pattern: {
          source: ['aws.ec2'],
          'detail-type': ['AWS API Call via CloudTrail'],
          detail: { eventSource: ['ec2.amazonaws.com'], eventName: ['RunInstances'], errorCode: [{ exists: false }] },
        },
      },
    ]);
  });

  it('matches the headers of the real fixtures', () => {
    for (const target of TARGETS) expect(ENFORCEMENT_EVENTS.some((e) => e.source === headerOf(target).source && e.detailType === headerOf(target)['detail-type']), target).toBe(true);
  });
});

describe('creatorOf', () => {
  it('takes the principal ARN first, then the session issuer ARN, the principal id, the user name, the type', () => {
    expect(creatorOf({ type: 'IAMUser', arn: 'arn:a', principalId: 'p', userName: 'u', sessionContext: { sessionIssuer: { arn: 'arn:s' } } })).toBe('arn:a');
    expect(creatorOf({ type: 'AssumedRole', principalId: 'p', userName: 'u', sessionContext: { sessionIssuer: { arn: 'arn:s' } } })).toBe('arn:s');
    expect(creatorOf({ type: 'AWSAccount', principalId: 'p', userName: 'u' })).toBe('p');
    expect(creatorOf({ type: 'WebIdentityUser', userName: 'u' })).toBe('u');
    expect(creatorOf({ type: 'Root' })).toBe('Root');
    expect(creatorOf({ type: 'IAMUser', userName: '' })).toBe('IAMUser');
    expect(creatorOf({ type: 'AWSService', invokedBy: 'autoscaling.amazonaws.com' })).toBe('AWSService via autoscaling.amazonaws.com');
  });
});
