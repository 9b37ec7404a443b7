import type { FleetwardenConfig } from '../config';

/** The config slices functions receive as JSON environment variables (validated again by their env schemas). */
export const accountEnvironmentsJson = (config: FleetwardenConfig): string =>
  JSON.stringify(Object.fromEntries(config.accounts.map((a) => [a.id, a.environment])));

export const riskPolicyJson = (config: FleetwardenConfig): string =>
  JSON.stringify({
    quarantineDays: config.policies.quarantine.days,
    quarantineByEnvironment: config.policies.quarantine.byEnvironment,
    insufficientCapacityMinutes: config.policies.quarantine.insufficientCapacityMinutes,
    riskHalfLifeHours: config.policies.quarantine.riskHalfLifeHours,
  });

export const enforcementPolicyJson = (config: FleetwardenConfig): string => {
  const { graceHours, actions, protectedTag, authorizedWhen, allow, circuitBreaker } = config.policies.enforcement;
  return JSON.stringify({ graceHours, actions, protectedTag, authorizedWhen, allow, circuitBreaker });
};

export const wastePolicyJson = (config: FleetwardenConfig): string => {
  const { unattachedEbsDays, unusedSnapshotDays, prices, cleanup } = config.policies.waste;
  return JSON.stringify({ unattachedEbsDays, unusedSnapshotDays, prices, protectedTag: config.policies.enforcement.protectedTag, cleanup });
};

/** Every account-region the enforcer sweeps: each account's own `regions`, or all of them. */
export const sweepTargets = (config: FleetwardenConfig): { account: string; region: string }[] =>
  config.accounts.flatMap((a) => (a.regions ?? config.regions).map((region) => ({ account: a.id, region })));
