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
