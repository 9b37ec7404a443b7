import { Readable } from 'node:stream';
import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { Ec2PlacementScores } from '../../functions/gatekeeper/aws';
import {
  CachedPlacementScores,
  NoPlacementScores,
  type PlacementDegraded,
  type PlacementScoreApi,
  placementFailureOf,
} from '../../functions/gatekeeper/placement-scores';
import { awsClient } from '../../functions/shared/aws';

const T0 = new Date('2026-11-22T10:00:00.000Z');
const MINUTE = 60_000;

/** A clock the test moves by hand. */
function manualClock(start = T0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

/** The error the SDK throws for an EC2 error response: its name is EC2's error code. */
const ec2Error = (name: string, httpStatusCode: number, message = `${name} from EC2`) =>
  new EC2ServiceException({ name, message, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode, requestId: 'req-1', attempts: 1 } });

/** The API port, counting its calls; each answer is the next scripted one (a map, or an error to throw). */
class CountingApi implements PlacementScoreApi {
  readonly calls: [string, string[]][] = [];
  constructor(private readonly answer: (call: number, region: string, types: readonly string[]) => Map<string, number> | Error) {}
  async fetch(region: string, instanceTypes: readonly string[]) {
    this.calls.push([region, [...instanceTypes]]);
    const answer = this.answer(this.calls.length, region, instanceTypes);
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

const SCORES = new Map([
  ['use1-az1', 9],
  ['use1-az4', 3],
]);

describe('CachedPlacementScores: the cache', () => {
  it('should ask once per (region, sorted instance-type set) within the TTL, whatever order the types come in', async () => {
    // Prepare
    const clock = manualClock();
    const api = new CountingApi(() => SCORES);
    const source = new CachedPlacementScores(api, { clock: clock.now });
    // Act
    const first = await source.scores('us-east-1', ['m5.large', 'c5.large', 'r6i.large']);
    clock.advance(14 * MINUTE);
    const again = await source.scores('us-east-1', ['r6i.large', 'm5.large', 'c5.large', 'm5.large']);
    await source.scores('us-east-1', ['m5.large', 'c5.large']); // another set
    await source.scores('eu-west-1', ['c5.large', 'm5.large', 'r6i.large']); // another region
    // Assess
    expect(first).toEqual({ byAzId: SCORES });
    expect(again).toBe(first);
    expect(api.calls).toEqual([
      ['us-east-1', ['c5.large', 'm5.large', 'r6i.large']],
      ['us-east-1', ['c5.large', 'm5.large']],
      ['eu-west-1', ['c5.large', 'm5.large', 'r6i.large']],
    ]);
  });

  it('should ask again once the TTL has passed, and follow a configured TTL', async () => {
    const clock = manualClock();
    const api = new CountingApi(() => SCORES);
    const source = new CachedPlacementScores(api, { clock: clock.now, ttlMs: 5 * MINUTE });
    await source.scores('us-east-1', ['m5.large']);
    clock.advance(5 * MINUTE - 1);
    await source.scores('us-east-1', ['m5.large']);
    expect(api.calls).toHaveLength(1);
    clock.advance(1);
    await source.scores('us-east-1', ['m5.large']);
    expect(api.calls).toHaveLength(2);
  });

  it('should default to a TTL of 15 minutes', async () => {
    const clock = manualClock();
    const api = new CountingApi(() => SCORES);
    const source = new CachedPlacementScores(api, { clock: clock.now });
    await source.scores('us-east-1', ['m5.large']);
    clock.advance(15 * MINUTE - 1);
    await source.scores('us-east-1', ['m5.large']);
    clock.advance(1);
    await source.scores('us-east-1', ['m5.large']);
    expect(api.calls).toHaveLength(2);
  });

  it('should share one call among concurrent asks for the same set', async () => {
    const api = new CountingApi(() => SCORES);
    const source = new CachedPlacementScores(api);
    const answers = await Promise.all([source.scores('us-east-1', ['a.large', 'b.large']), source.scores('us-east-1', ['b.large', 'a.large']), source.scores('us-east-1', ['a.large', 'b.large'])]);
    expect(api.calls).toHaveLength(1);
    expect(new Set(answers).size).toBe(1);
  });

  it('should not call the API for no instance types', async () => {
    const api = new CountingApi(() => SCORES);
    expect(await new CachedPlacementScores(api).scores('us-east-1', [])).toEqual({ byAzId: new Map() });
    expect(api.calls).toEqual([]);
  });

  it('should keep at most maxEntries answers, dropping the oldest', async () => {
    const api = new CountingApi(() => SCORES);
    const source = new CachedPlacementScores(api, { maxEntries: 2 });
    for (const type of ['a.large', 'b.large', 'c.large']) await source.scores('us-east-1', [type]);
    await source.scores('us-east-1', ['c.large']); // kept
    await source.scores('us-east-1', ['a.large']); // dropped: asked again
    expect(api.calls.map(([, [type]]) => type)).toEqual(['a.large', 'b.large', 'c.large', 'a.large']);
  });
});

describe('CachedPlacementScores: degrading to risk and price', () => {
  it.each([
    ['UnauthorizedOperation', 403],
    ['AccessDenied', 403],
    ['AccessDeniedException', 403],
    ['OptInRequired', 401],
  ])('should remember a denial (%s) for the TTL in the whole region, and say so in the answer', async (code, status) => {
    // Prepare
    const clock = manualClock();
    const told: PlacementDegraded[] = [];
    const api = new CountingApi(() => ec2Error(code, status));
    const source = new CachedPlacementScores(api, { clock: clock.now, onDegraded: (event) => told.push(event) });
    // Act
    const denied = await source.scores('us-east-1', ['m5.large', 'c5.large']);
    clock.advance(10 * MINUTE);
    const later = await source.scores('us-east-1', ['r6i.large']); // another set, same region: not asked
    // Assess
    expect(denied).toEqual({ byAzId: new Map(), unavailable: `GetSpotPlacementScores denied (${code})` });
    expect(later).toEqual(denied);
    expect(api.calls).toHaveLength(1);
    expect(told).toMatchObject([{ region: 'us-east-1', instanceTypes: ['c5.large', 'm5.large'], failure: 'denied', until: new Date(T0.getTime() + 15 * MINUTE) }]);
    expect((told[0]!.error as Error).name).toBe(code);
    // Act: the TTL passed (a policy may have been added meanwhile).
    clock.advance(5 * MINUTE);
    await source.scores('us-east-1', ['r6i.large']);
    expect(api.calls).toHaveLength(2);
  });

  it('should keep a denial to its region', async () => {
    const api = new CountingApi((_call, region) => (region === 'us-east-1' ? ec2Error('UnauthorizedOperation', 403) : SCORES));
    const source = new CachedPlacementScores(api);
    expect((await source.scores('us-east-1', ['m5.large'])).unavailable).toBe('GetSpotPlacementScores denied (UnauthorizedOperation)');
    expect(await source.scores('eu-west-1', ['m5.large'])).toEqual({ byAzId: SCORES });
  });

  it.each(['RequestLimitExceeded', 'Throttling'])('should degrade a throttled call (%s) and ask the region again only after a minute', async (code) => {
    // Prepare: throttled once, then answered.
    const clock = manualClock();
    const api = new CountingApi((call) => (call === 1 ? ec2Error(code, 503) : SCORES));
    const source = new CachedPlacementScores(api, { clock: clock.now });
    // Act + Assess
    expect(await source.scores('us-east-1', ['m5.large'])).toEqual({ byAzId: new Map(), unavailable: `GetSpotPlacementScores throttled (${code})` });
    clock.advance(MINUTE - 1);
    expect((await source.scores('us-east-1', ['c5.large'])).unavailable).toBe(`GetSpotPlacementScores throttled (${code})`);
    expect(api.calls).toHaveLength(1);
    clock.advance(1);
    expect(await source.scores('us-east-1', ['m5.large'])).toEqual({ byAzId: SCORES });
    expect(api.calls).toHaveLength(2);
  });

  it.each([
    ['InternalError', 500],
    ['Unavailable', 503],
    ['InvalidParameterValue', 400],
    ['Error', 500], // moto: an HTML 500 page the SDK cannot parse
  ])('should degrade any other failure (%s) for that set only, for a minute', async (code, status) => {
    const clock = manualClock();
    const api = new CountingApi((call) => (call === 1 ? ec2Error(code, status) : SCORES));
    const source = new CachedPlacementScores(api, { clock: clock.now });
    expect(await source.scores('us-east-1', ['m5.large'])).toEqual({ byAzId: new Map(), unavailable: `GetSpotPlacementScores failed (${code})` });
    expect(await source.scores('us-east-1', ['m5.large'])).toMatchObject({ unavailable: `GetSpotPlacementScores failed (${code})` });
    expect(await source.scores('us-east-1', ['c5.large'])).toEqual({ byAzId: SCORES }); // another set is asked
    clock.advance(MINUTE);
    expect(await source.scores('us-east-1', ['m5.large'])).toEqual({ byAzId: SCORES });
    expect(api.calls).toHaveLength(3);
  });

  it('should degrade a network failure (no EC2 error code) too', async () => {
    const api = new CountingApi(() => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { name: 'Error', code: 'ECONNREFUSED' }));
    expect(await new CachedPlacementScores(api).scores('us-east-1', ['m5.large'])).toMatchObject({ unavailable: 'GetSpotPlacementScores failed (Error)' });
  });

  it('should keep fresh scores of a set when the region is throttled afterwards', async () => {
    const clock = manualClock();
    const api = new CountingApi((call) => (call === 1 ? SCORES : ec2Error('RequestLimitExceeded', 503)));
    const source = new CachedPlacementScores(api, { clock: clock.now });
    await source.scores('us-east-1', ['m5.large']);
    await source.scores('us-east-1', ['c5.large']); // throttled
    expect(await source.scores('us-east-1', ['m5.large'])).toEqual({ byAzId: SCORES });
  });

  it('should classify failures by EC2 error code', () => {
    expect(placementFailureOf(ec2Error('UnauthorizedOperation', 403))).toBe('denied');
    expect(placementFailureOf(ec2Error('UnsupportedOperation', 400))).toBe('unsupported');
    expect(placementFailureOf(ec2Error('RequestLimitExceeded', 503))).toBe('throttled');
    expect(placementFailureOf(ec2Error('InternalError', 500))).toBe('failed');
    expect(placementFailureOf('not an error')).toBe('failed');
  });

  it('should have a stand-in that knows no scores and is not degraded', async () => {
    expect(await new NoPlacementScores().scores()).toEqual({ byAzId: new Map() });
  });
});

describe('Ec2PlacementScores through the real SDK client', () => {
  // The SDK client is real; a middleware at the start of its stack takes the command instead of the network.
  function capture(region: string, answer: (input: Record<string, unknown>, call: number) => unknown) {
    const client = awsClient(EC2Client, { region });
    const seen: { command: string; input: Record<string, unknown> }[] = [];
    const name = `capture-${Math.random()}`;
    client.middlewareStack.add(
      (_next, context) => async (args) => {
        seen.push({ command: String(context.commandName), input: args.input as Record<string, unknown> });
        const output = answer(args.input as Record<string, unknown>, seen.length);
        if (output instanceof Error) throw output;
        return { output: output as never, response: {} };
      },
      { step: 'initialize', name, priority: 'low' },
    );
    return { seen, done: () => client.middlewareStack.remove(name) };
  }

  it('should ask for single-AZ scores of the unique, sorted types in the region, following pages, keyed by AZ ID', async () => {
    // Prepare: the shape EC2 answers, in two pages; a region-level entry and another region's AZ are ignored.
    const { seen, done } = capture('us-east-1', (_input, call) =>
      call === 1
        ? {
            $metadata: { httpStatusCode: 200, requestId: 'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111' },
            SpotPlacementScores: [
              { Region: 'us-east-1', AvailabilityZoneId: 'use1-az6', Score: 9 },
              { Region: 'us-east-1', AvailabilityZoneId: 'use1-az1', Score: 7 },
              { Region: 'us-east-1', Score: 8 },
              { Region: 'us-west-2', AvailabilityZoneId: 'usw2-az1', Score: 10 },
            ],
            NextToken: 'page-2',
          }
        : {
            $metadata: { httpStatusCode: 200, requestId: 'a1b2c3d4-5678-90ab-cdef-EXAMPLE22222' },
            SpotPlacementScores: [
              { Region: 'us-east-1', AvailabilityZoneId: 'use1-az4', Score: 2 },
              { Region: 'us-east-1', AvailabilityZoneId: 'use1-az2' },
            ],
          },
    );
    // Act
    let scores: Map<string, number>;
    try {
      scores = await new Ec2PlacementScores().fetch('us-east-1', ['m5.large', 'c5.large', 'r6i.large', 'm5.large']);
    } finally {
      done();
    }
    // Assess
    expect(scores).toEqual(
      new Map([
        ['use1-az6', 9],
        ['use1-az1', 7],
        ['use1-az4', 2],
      ]),
    );
    const request = { InstanceTypes: ['c5.large', 'm5.large', 'r6i.large'], TargetCapacity: 1, TargetCapacityUnitType: 'units', SingleAvailabilityZone: true, RegionNames: ['us-east-1'] };
    expect(seen).toEqual([
      { command: 'GetSpotPlacementScoresCommand', input: { ...request, NextToken: undefined } },
      { command: 'GetSpotPlacementScoresCommand', input: { ...request, NextToken: 'page-2' } },
    ]);
  });

  it('should ask for the configured target capacity', async () => {
    const { seen, done } = capture('eu-west-1', () => ({ $metadata: {}, SpotPlacementScores: [] }));
    try {
      expect(await new Ec2PlacementScores({ targetCapacity: 4 }).fetch('eu-west-1', ['m5.large'])).toEqual(new Map());
    } finally {
      done();
    }
    expect(seen[0]!.input).toMatchObject({ TargetCapacity: 4, RegionNames: ['eu-west-1'] });
  });

  it('should not call EC2 for no instance types', async () => {
    expect(await new Ec2PlacementScores({ clientFor: () => undefined as unknown as EC2Client }).fetch('us-east-1', [])).toEqual(new Map());
  });

  // One step further: the SDK serialises the request and parses EC2's XML answer (and error) itself.
  function wire(region: string, respond: () => { statusCode: number; body: string }) {
    const client = awsClient(EC2Client, { region });
    const bodies: string[] = [];
    const name = `wire-${Math.random()}`;
    client.middlewareStack.add(
      () => async (args) => {
        const request = args.request as { body?: string };
        bodies.push(String(request.body));
        const { statusCode, body } = respond();
        return { output: undefined as never, response: { statusCode, headers: { 'content-type': 'text/xml;charset=UTF-8' }, body: Readable.from([Buffer.from(body)]) } };
      },
      { step: 'deserialize', name, priority: 'low' },
    );
    return { bodies, done: () => client.middlewareStack.remove(name) };
  }

  it('should send the query EC2 expects and read its XML answer', async () => {
    const { bodies, done } = wire('us-east-2', () => ({
      statusCode: 200,
      body: `<?xml version="1.0" encoding="UTF-8"?>
<GetSpotPlacementScoresResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>a1b2c3d4-5678-90ab-cdef-EXAMPLE33333</requestId>
    <spotPlacementScoreSet>
        <item><region>us-east-2</region><availabilityZoneId>use2-az1</availabilityZoneId><score>8</score></item>
        <item><region>us-east-2</region><availabilityZoneId>use2-az3</availabilityZoneId><score>5</score></item>
    </spotPlacementScoreSet>
</GetSpotPlacementScoresResponse>`,
    }));
    let scores: Map<string, number>;
    try {
      scores = await new Ec2PlacementScores().fetch('us-east-2', ['m5.large', 'c5.large', 'm6i.large']);
    } finally {
      done();
    }
    expect(scores).toEqual(
      new Map([
        ['use2-az1', 8],
        ['use2-az3', 5],
      ]),
    );
    expect(Object.fromEntries(new URLSearchParams(bodies[0]))).toEqual({
      Action: 'GetSpotPlacementScores',
      Version: '2016-11-15',
      'InstanceType.1': 'c5.large',
      'InstanceType.2': 'm5.large',
      'InstanceType.3': 'm6i.large',
      TargetCapacity: '1',
      TargetCapacityUnitType: 'units',
      SingleAvailabilityZone: 'true',
      'RegionName.1': 'us-east-2',
    });
  });

  it('should surface a denial with the SDK error name, which the cache remembers', async () => {
    // Prepare: EC2's answer when the role lacks ec2:GetSpotPlacementScores.
    const { bodies, done } = wire('ca-central-1', () => ({
      statusCode: 403,
      body: `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/SwapSteps/fn is not authorized to perform: ec2:GetSpotPlacementScores because no identity-based policy allows the ec2:GetSpotPlacementScores action</Message></Error></Errors><RequestID>a1b2c3d4-5678-90ab-cdef-EXAMPLE44444</RequestID></Response>`,
    }));
    const api = new Ec2PlacementScores();
    try {
      // Act + Assess: the adapter throws EC2's error...
      await expect(api.fetch('ca-central-1', ['m5.large'])).rejects.toMatchObject({ name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } });
      // ...which the cache turns into "no scores", once for the region.
      const source = new CachedPlacementScores(api);
      expect(await source.scores('ca-central-1', ['m5.large'])).toEqual({ byAzId: new Map(), unavailable: 'GetSpotPlacementScores denied (UnauthorizedOperation)' });
      expect(await source.scores('ca-central-1', ['c5.large'])).toMatchObject({ unavailable: 'GetSpotPlacementScores denied (UnauthorizedOperation)' });
    } finally {
      done();
    }
    expect(bodies).toHaveLength(2); // the adapter's own call and the cache's first; not the second
  });
});
