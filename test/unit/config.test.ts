import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config';
import { buildApp } from '../../lib/app';

const minimal = {
  homeRegion: 'us-east-1',
  regions: ['us-east-1'],
  accounts: [{ id: '111111111111', name: 'prod', environment: 'PROD' }],
};

describe('deployment config', () => {
  it('fills every default (15-day quarantine, 24 h grace, 7-day EBS, 30-day snapshots, 1-minute drift) and is audit-only unless told otherwise', () => {
    const config = parseConfig(minimal);
    expect(config.dryRun).toBe(true);
    expect(config.stage).toBe('dev');
    expect(config.policies.quarantine).toEqual({
      days: 15,
      byEnvironment: { PROD: true, STAGING: false, LAB: false },
      insufficientCapacityMinutes: 10,
      riskHalfLifeHours: 72,
    });
    expect(config.policies.enforcement.graceHours).toBe(24);
    expect(config.policies.enforcement.actions).toEqual({ PROD: 'none', STAGING: 'none', LAB: 'none' });
    expect(config.policies.enforcement.authorizedWhen).toEqual({ tags: [{ key: 'ManagedBy', value: 'fleetwarden' }, { key: 'eks:cluster-name' }], autoScalingGroup: true });
    expect(config.policies.enforcement.allow).toEqual({ tags: [], amis: [], accounts: [] });
    expect(config.policies.waste).toMatchObject({ scanSchedule: 'rate(1 day)', unattachedEbsDays: 7, unusedSnapshotDays: 30, prices: { default: { idleAddress: 3.6, gp3: 0.08, snapshot: 0.05 }, regions: {} } });
    expect(config.policies.waste.cleanup.byEnvironment).toEqual({ PROD: { address: false, volume: false, snapshot: false }, STAGING: { address: false, volume: false, snapshot: false }, LAB: { address: false, volume: false, snapshot: false } });
    expect(config.policies.drift.cycleMinutes).toBe(1);
  });

  it('leaves the Spot interruption experiment off, aimed at the fleetwarden:chaos tag, unless told otherwise', () => {
    expect(parseConfig(minimal).chaos).toEqual({
      spotInterruptions: { enabled: false, targetTag: { key: 'fleetwarden:chaos', value: 'spot-interruption' }, durationBeforeInterruption: 'PT2M', select: { percent: 50 }, stopAlarmNames: [] },
    });
  });

  it('keeps defaults for the keys a partial policy leaves out', () => {
    const config = parseConfig({ ...minimal, policies: { quarantine: { byEnvironment: { STAGING: true } } } });
    expect(config.policies.quarantine.byEnvironment).toEqual({ PROD: true, STAGING: true, LAB: false });
    expect(config.policies.quarantine.days).toBe(15);
  });

  it.each([
    [{ ...minimal, accounts: [{ id: '1111', name: 'x', environment: 'PROD' }] }, 'fleetwarden.accounts[0].id: an AWS account id is 12 digits'],
    [{ ...minimal, accounts: [{ id: '111111111111', name: 'x', environment: 'PRODUCTION' }] }, 'fleetwarden.accounts[0].environment'],
    [{ ...minimal, policies: { quarantine: { days: 0 } } }, 'fleetwarden.policies.quarantine.days'],
    [{ ...minimal, policies: { enforcement: { actions: { LAB: 'nuke' } } } }, 'fleetwarden.policies.enforcement.actions.LAB'],
    [{ ...minimal, policies: { quarantine: { dayz: 3 } } }, 'fleetwarden.policies.quarantine.dayz: unknown key'],
    [{ ...minimal, homeRegion: 'eu-west-1' }, 'fleetwarden.homeRegion: homeRegion must be one of regions'],
    [{ ...minimal, accounts: [minimal.accounts[0], minimal.accounts[0]] }, 'fleetwarden.accounts[1].id: account 111111111111 is already listed at accounts.0'],
    [{ ...minimal, accounts: [{ ...minimal.accounts[0], regions: ['eu-west-1'] }] }, 'fleetwarden.accounts[0].regions[0]: region eu-west-1 is not one of regions (us-east-1)'],
    [
      { ...minimal, accounts: Array.from({ length: 101 }, (_, i) => ({ id: String(100_000_000_000 + i), name: `a${i}`, environment: 'LAB' })) },
      'fleetwarden.accounts: 101 accounts: set organizations.id beyond 100',
    ],
    [{ ...minimal, memberRoleName: 'fleetwarden member' }, 'fleetwarden.memberRoleName: not an IAM role name'],
    [{ ...minimal, organizations: { id: 'org-1' } }, 'fleetwarden.organizations.id: an organization id looks like o-a1b2c3d4e5'],
    [{ ...minimal, policies: { enforcement: { allow: { accounts: ['444444444444'] } } } }, 'fleetwarden.policies.enforcement.allow.accounts[0]: account 444444444444 is not one of accounts'],
    [{ ...minimal, policies: { enforcement: { allow: { amis: ['ubuntu'] } } } }, 'fleetwarden.policies.enforcement.allow.amis[0]: an AMI id looks like ami-0123456789abcdef0'],
    [{ ...minimal, policies: { enforcement: { authorizedWhen: { tags: [{ value: 'x' }] } } } }, 'fleetwarden.policies.enforcement.authorizedWhen.tags[0].key'],
    [{ ...minimal, chaos: { spotInterruptions: { enable: true } } }, 'fleetwarden.chaos.spotInterruptions.enable: unknown key'],
    [{ ...minimal, chaos: { spotInterruptions: { durationBeforeInterruption: 'PT1M' } } }, 'fleetwarden.chaos.spotInterruptions.durationBeforeInterruption: an ISO 8601 duration in whole minutes from PT2M to PT15M'],
    [{ ...minimal, chaos: { spotInterruptions: { select: { percent: 0 } } } }, 'fleetwarden.chaos.spotInterruptions.select'],
    [{ ...minimal, chaos: { spotInterruptions: { targetTag: { key: '' } } } }, 'fleetwarden.chaos.spotInterruptions.targetTag.key'],
    [{ ...minimal, chaos: { spotInterruptions: { enabled: true } } }, 'fleetwarden.chaos.spotInterruptions.enabled: no account in accounts is LAB'],
  ])('rejects a bad key naming its path (%#)', (raw, path) => {
    expect(() => parseConfig(raw)).toThrow(ConfigError);
    expect(() => parseConfig(raw)).toThrow(path);
  });

  it('fails the synth itself with the path of the bad key', () => {
    expect(() => buildApp({ config: { ...minimal, regions: ['mars-1'] }, skipBundling: true })).toThrow(/fleetwarden\.regions\[0\]: a region looks like us-east-1/);
  });

  it('accepts the config as a JSON string, as `cdk synth -c fleetwarden=...` passes it', () => {
    expect(parseConfig(JSON.stringify(minimal)).accounts[0]?.environment).toBe('PROD');
    expect(() => parseConfig('{not json')).toThrow(/fleetwarden: not valid JSON/);
  });
});

describe('notifications.webhooks config', () => {
  const withWebhook = (webhook: Record<string, unknown>) => ({ ...minimal, notifications: { webhooks: [{ name: 'ops', kind: 'slack', urlSecretName: 'fleetwarden/ops-slack', events: ['PoolQuarantined'], ...webhook }] } });
  const problems = (config: unknown) => {
    try {
      parseConfig(config);
      return [];
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message.split('\n').slice(1).map((line) => line.trim());
    }
  };

  it('has no webhook unless configured, and retries 8 times within an hour with the Authorization header by default', () => {
    expect(parseConfig(minimal).notifications.webhooks).toEqual([]);
    expect(parseConfig(withWebhook({})).notifications.webhooks[0]).toMatchObject({ header: 'Authorization', retryAttempts: 8, maxEventAgeMinutes: 60 });
  });

  it('names the path of an event type that is not one Fleetwarden publishes for webhooks', () => {
    const [problem] = problems(withWebhook({ events: ['PoolQuarantined', 'SwapRolledback'] }));
    expect(problem).toMatch(/^fleetwarden\.notifications\.webhooks\[0\]\.events\[1\]: Invalid option: expected one of "PoolQuarantined"\|"SwapRolledBack"/);
  });

  it('names an unknown key of a webhook', () => {
    expect(problems(withWebhook({ channel: '#ops' }))).toEqual(['fleetwarden.notifications.webhooks[0].channel: unknown key']);
  });

  it('requires an https url, or the URL kept in Secrets Manager, but not both', () => {
    expect(problems(withWebhook({ urlSecretName: undefined, url: 'http://hooks.example.com/x' }))).toEqual([
      'fleetwarden.notifications.webhooks[0].url: an https URL (EventBridge API destinations call https endpoints only)',
    ]);
    expect(problems(withWebhook({ url: 'https://hooks.example.com/x' }))).toEqual(['fleetwarden.notifications.webhooks[0].url: set exactly one of url and urlSecretName']);
    expect(problems(withWebhook({ urlSecretName: undefined }))).toEqual(['fleetwarden.notifications.webhooks[0].url: set exactly one of url and urlSecretName']);
    expect(problems(withWebhook({ urlSecretName: undefined, url: 'https://hooks.example.com/x' }))).toEqual([]);
  });

  it('refuses an environment filter when none of the events carries an environment', () => {
    expect(problems(withWebhook({ environments: ['PROD'] }))).toEqual([
      'fleetwarden.notifications.webhooks[0].environments: none of the events carries an environment to filter on (only InstanceFlagged, InstanceStopped, InstanceTerminated, NodeDrainFailed do)',
    ]);
    expect(problems(withWebhook({ events: ['PoolQuarantined', 'InstanceFlagged'], environments: ['PROD'] }))).toEqual([]);
  });

  it('refuses a webhook name listed twice and an event listed twice', () => {
    const config = withWebhook({ events: ['PoolQuarantined', 'PoolQuarantined'] });
    config.notifications.webhooks.push({ ...config.notifications.webhooks[0]!, events: ['WasteReport'] });
    expect(problems(config)).toEqual([
      'fleetwarden.notifications.webhooks[0].events[1]: PoolQuarantined is listed twice',
      'fleetwarden.notifications.webhooks[1].name: webhook ops is already listed at notifications.webhooks[0]',
    ]);
  });

  it('refuses a secret name Secrets Manager would not accept', () => {
    expect(problems(withWebhook({ secretName: 'my secret' }))).toEqual(['fleetwarden.notifications.webhooks[0].secretName: a Secrets Manager secret name (letters, digits, /_+=.@-) or ARN']);
  });
});
