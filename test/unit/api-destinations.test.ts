import { describe, expect, it } from 'vitest';
import { transformInput, valueAtPath } from '../../local/api-destinations';

const event = {
  id: 'e-1',
  'detail-type': 'CircuitBreakerTripped',
  source: 'fleetwarden.enforcement',
  time: '2026-12-07T10:00:00Z',
  detail: { reason: 'planned 12 > "max" 10\nstop', planned: 12, groups: ['web', 'api'], 'odd-key_1': true },
};
const rule = { ruleArn: 'arn:aws:events:us-east-1:123456789012:rule/fleetwarden/r', ruleName: 'r' };

describe('local input transformer (the EventBridge subset Fleetwarden uses)', () => {
  it('reads dot names with dashes and underscores, array indices, and the whole event', () => {
    expect(valueAtPath(event, '$.detail-type')).toBe('CircuitBreakerTripped');
    expect(valueAtPath(event, '$.detail.odd-key_1')).toBe(true);
    expect(valueAtPath(event, '$.detail.groups[1]')).toBe('api');
    expect(valueAtPath(event, '$')).toBe(event);
    expect(valueAtPath(event, '$.detail.missing.deeper')).toBeUndefined();
  });

  it('refuses wildcards rather than guessing', () => {
    expect(() => valueAtPath(event, '$.detail.groups[*]')).toThrow(/no wildcards/);
  });

  it('JSON-escapes a string inside quotes and inserts other values as JSON', () => {
    const body = transformInput(
      { InputPathsMap: { reason: '$.detail.reason', planned: '$.detail.planned', groups: '$.detail.groups' }, InputTemplate: '{"text":"<reason> (<planned>)","planned":<planned>,"groups":<groups>,"reason":<reason>}' },
      event,
      rule,
    );
    expect(JSON.parse(body)).toEqual({ text: 'planned 12 > "max" 10\nstop (12)', planned: 12, groups: ['web', 'api'], reason: 'planned 12 > "max" 10\nstop' });
  });

  it('fills a missing path with an empty string inside quotes and null outside', () => {
    expect(JSON.parse(transformInput({ InputPathsMap: { x: '$.detail.nope' }, InputTemplate: '{"a":"[<x>]","b":<x>}' }, event, rule))).toEqual({ a: '[]', b: null });
  });

  it('knows the predefined variables, and leaves text that is no variable alone', () => {
    const body = transformInput({ InputTemplate: '{"rule":"<aws.events.rule-name>","event":<aws.events.event.json>,"html":"<b>"}' }, event, rule);
    expect(JSON.parse(body)).toEqual({ rule: 'r', event, html: '<b>' });
  });
});
