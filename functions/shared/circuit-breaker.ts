import * as z from 'zod';

/** Caps on the destructive actions of one run, by count and by share of what is in scope. */
export const CircuitBreakerSchema = z.strictObject({ maxActionsPerRun: z.number().int().min(0), maxPercentOfFleet: z.number().min(0).max(100) });
export type CircuitBreaker = z.infer<typeof CircuitBreakerSchema>;

export type BreakerVerdict = { trip: false } | { trip: true; reason: string };

/**
 * Pure: whether a run's planned destructive actions trip the breaker. `inScope` is what the run
 * could have acted on (instances in scope, resources of the kinds it cleans); `noun` names them
 * in the reason. Tripped: nothing is acted on this run, whatever was planned waits for the next.
 */
export function circuitBreaker(planned: number, inScope: number, limits: CircuitBreaker, noun: string): BreakerVerdict {
  if (planned > limits.maxActionsPerRun) return { trip: true, reason: `${planned} planned actions exceed the limit of ${limits.maxActionsPerRun} per run` };
  const percent = inScope > 0 ? (planned / inScope) * 100 : planned > 0 ? 100 : 0;
  if (percent > limits.maxPercentOfFleet) return { trip: true, reason: `${planned} planned actions are ${percent.toFixed(1)} % of the ${inScope} ${noun} in scope, over ${limits.maxPercentOfFleet} %` };
  return { trip: false };
}
