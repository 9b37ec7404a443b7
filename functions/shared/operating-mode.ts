import * as z from 'zod';
import { EnvironmentClassSchema } from './environments';

/**
 * What the deployed stack acts on and what it only records: its `OperatingMode` output
 * (lib/fleetwarden-stack.ts), a slice of the deployment config.
 *
 * @example
 * { "dryRun": true, "enforcementActions": { "PROD": "none", "STAGING": "stop", "LAB": "terminate" },
 *   "wasteCleanup": { "PROD": { "address": false, "volume": false, "snapshot": false }, ... },
 *   "quarantine": { "days": 15, "byEnvironment": { "PROD": true, "STAGING": false, "LAB": false },
 *                   "insufficientCapacityMinutes": 10, "riskHalfLifeHours": 72 } }
 */
const perEnvironment = <T extends z.ZodType>(value: T) => z.record(EnvironmentClassSchema, value);

export const OperatingModeSchema = z.object({
  dryRun: z.boolean(),
  enforcementActions: perEnvironment(z.enum(['none', 'stop', 'terminate'])),
  wasteCleanup: perEnvironment(z.record(z.string(), z.boolean())),
  quarantine: z.object({
    days: z.number(),
    byEnvironment: perEnvironment(z.boolean()),
    riskHalfLifeHours: z.number().positive(),
  }),
});
export type OperatingMode = z.infer<typeof OperatingModeSchema>;

/** The stack's mode, or undefined for a stack deployed before the output existed (or a malformed one). */
export function parseOperatingMode(output: string | undefined): OperatingMode | undefined {
  if (!output) return undefined;
  try {
    const parsed = OperatingModeSchema.safeParse(JSON.parse(output));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const ENVIRONMENTS = EnvironmentClassSchema.options;

/** What is in dry-run, in a few lines: all of it, or what acts in which environment. */
export function describeMode(mode: OperatingMode | undefined): string[] {
  if (!mode) return ['unknown: the stack has no OperatingMode output (deployed before it existed)'];
  const quarantining = ENVIRONMENTS.filter((e) => mode.quarantine.byEnvironment[e]);
  const quarantine = `pools close for ${mode.quarantine.days} days after a Spot interruption in ${quarantining.length ? quarantining.join(', ') : 'no environment'}`;
  if (mode.dryRun) {
    return ['dry-run ON: every capability decides and records, nothing acts (a swap started with --no-dry-run does)', `risk: ${quarantine} (recorded, not acted on)`];
  }
  const enforcement = ENVIRONMENTS.map((e) => `${e} ${mode.enforcementActions[e] ?? 'none'}`).join(', ');
  const cleanup = ENVIRONMENTS.map((e) => {
    const kinds = Object.entries(mode.wasteCleanup[e] ?? {})
      .filter(([, on]) => on)
      .map(([kind]) => kind);
    return `${e} ${kinds.length ? kinds.join('+') : 'report only'}`;
  }).join(', ');
  return [
    'dry-run OFF: Fleetwarden acts where the policies below allow',
    `enforcement: ${enforcement} (none: flags and notifies only)`,
    `waste cleanup: ${cleanup}`,
    `risk: ${quarantine}; swaps, batches and drains act`,
  ];
}
