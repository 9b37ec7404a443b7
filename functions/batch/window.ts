import { Cron } from 'croner';
import type { MaintenanceWindow } from './model';

export type WindowState = { open: true; closesAt: Date } | { open: false; opensAt: Date };

/**
 * Whether a maintenance window is open at `now`: it opens at each match of its cron expression
 * (in its time zone, so daylight saving time moves it with the clock on the wall) and stays
 * open for `durationMinutes`. When closed, says when it next opens. Pure.
 */
export function windowState(window: MaintenanceWindow, now: Date): WindowState {
  const cron = new Cron(window.cron, { timezone: window.timeZone, paused: true });
  const durationMs = window.durationMinutes * 60_000;
  // A window opening exactly now counts (croner's previous runs are strictly before the date).
  const reference = new Date(now.getTime() + 1000);
  // Every occurrence lasts as long, so the latest start also ends latest: if any covers now, it does.
  const [latest] = cron.previousRuns(1, reference);
  if (latest && latest.getTime() + durationMs > now.getTime()) return { open: true, closesAt: new Date(latest.getTime() + durationMs) };
  const next = cron.nextRun(now);
  if (!next) throw new Error(`maintenance window ${window.cron} never opens again`);
  return { open: false, opensAt: next };
}
