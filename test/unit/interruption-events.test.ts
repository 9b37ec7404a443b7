import { describe, expect, it } from 'vitest';
import { HANDLED_EVENTS, parseInterruptionEvent } from '../../functions/interruption/events';
import { MalformedEventError, UnknownEventError } from '../../functions/shared/errors';
import { fixture } from '../support';

describe('interruption event parsers', () => {
  it('normalizes a Spot interruption warning with its 2-minute deadline', () => {
    expect(parseInterruptionEvent(fixture('spot-interruption-warning'))).toEqual({
      eventId: '1e5527d7-bb36-4607-3370-4164db56a40e',
      kind: 'spot-interruption',
      detailType: 'EC2 Spot Instance Interruption Warning',
      account: '111111111111',
      region: 'us-east-1',
      time: new Date('2026-11-22T10:00:00Z'),
      instanceIds: ['i-0b3a5c4d7e8f90123'],
      deadline: new Date('2026-11-22T10:02:00Z'),
    });
  });

  it('normalizes a rebalance recommendation, a state change, a Health retirement and an ASG termination hook', () => {
    expect(parseInterruptionEvent(fixture('rebalance-recommendation'))).toMatchObject({ kind: 'rebalance-recommendation', instanceIds: ['i-0b3a5c4d7e8f90123'] });
    expect(parseInterruptionEvent(fixture('state-change-shutting-down'))).toMatchObject({ kind: 'state-change', state: 'shutting-down' });
    expect(parseInterruptionEvent(fixture('health-scheduled-retirement'))).toMatchObject({
      kind: 'scheduled-change',
      instanceIds: ['i-0b3a5c4d7e8f90123'],
      deadline: new Date('2026-12-05T06:00:00Z'),
    });
    expect(parseInterruptionEvent(fixture('asg-terminate-lifecycle-action'))).toMatchObject({
      kind: 'asg-termination',
      asg: { name: 'web', hook: 'fleetwarden-drain', token: '630aa23f-48eb-45e7-aba6-799ea6093a0f' },
    });
  });

  it('calls an unknown detail-type unknown, not malformed', () => {
    expect(() => parseInterruptionEvent({ ...fixture('rebalance-recommendation'), 'detail-type': 'EC2 Fleet Error' })).toThrow(UnknownEventError);
    expect(() => parseInterruptionEvent({ hello: 'world' })).toThrow(MalformedEventError);
  });

  it('names the bad field of a malformed event', () => {
    const event = fixture('spot-interruption-warning');
    event.detail['instance-action'] = 'explode';
    delete event.account;
    expect(() => parseInterruptionEvent(event)).toThrow(/account: .*detail\.instance-action: /s);
  });

  it('exports one pattern per parser for the CDK rules', () => {
    expect(HANDLED_EVENTS.map((h) => h.detailType)).toEqual([
      'EC2 Spot Instance Interruption Warning',
      'EC2 Instance Rebalance Recommendation',
      'EC2 Instance State-change Notification',
      'AWS Health Event',
      'EC2 Instance-terminate Lifecycle Action',
    ]);
    expect(HANDLED_EVENTS[2]!.pattern).toEqual({
      source: ['aws.ec2'],
      'detail-type': ['EC2 Instance State-change Notification'],
      detail: { state: ['stopping', 'stopped', 'shutting-down', 'terminated'] },
    });
  });
});

describe('AWS Health events', () => {
  it('are malformed when they name no EC2 instance (never dropped silently)', () => {
    const event = fixture('health-scheduled-retirement');
    event.detail.affectedEntities = [{ entityValue: 'vol-0123456789abcdef0' }];
    expect(() => parseInterruptionEvent(event)).toThrow(/names no EC2 instance/);
  });
});
