import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CIRCUIT_BREAKER_METRIC, stepMetrics as enforcementStepMetrics } from '../../functions/enforcement/steps';
import { parseInterruptionEvent } from '../../functions/interruption/events';
import { type IngestDeps, type InstanceFacts, ingestInterruption, reportIngest } from '../../functions/interruption/ingest';
import { emptyScanReport } from '../../functions/waste/scanner';
import { CLEANUP_CIRCUIT_BREAKER_METRIC, stepMetrics as wasteStepMetrics } from '../../functions/waste/steps';
import { PROJECT_ROOT } from '../../lib/paths';

/** The alarms and the dashboard read these series and log fields: they must be what the functions write. */
describe('what the operator surfaces read', () => {
  it('should count a tripped enforcement circuit breaker as 1 and an untripped one as 0, in every sweep plan', () => {
    // Prepare
    const tripped = { trip: true, acting: [], planned: 12, fleet: 40, reason: '12 planned actions exceed the limit of 10 per run' };
    const open = { trip: false, acting: ['111111111111/us-east-1/i-0abc12345678'], planned: 1, fleet: 40 };

    // Act
    const whenTripped = enforcementStepMetrics('plan', tripped);
    const whenOpen = enforcementStepMetrics('plan', open);

    // Assess
    expect(whenTripped[CIRCUIT_BREAKER_METRIC]).toBe(1);
    expect(whenOpen[CIRCUIT_BREAKER_METRIC]).toBe(0);
  });

  it('should count a tripped waste cleanup circuit breaker as 1 and an untripped one as 0, in every scan report', () => {
    // Prepare
    const report = { findings: 3, totalMonthlyUsd: 12.5, report: emptyScanReport() };

    // Act
    const whenTripped = wasteStepMetrics('report', { ...report, trip: true, acting: [], planned: 30, reason: '30 planned actions exceed the limit of 20 per run' });
    const whenOpen = wasteStepMetrics('report', { ...report, trip: false, acting: [], planned: 0 });

    // Assess
    expect(whenTripped.filter((p) => p.name === CLEANUP_CIRCUIT_BREAKER_METRIC)).toEqual([{ name: CLEANUP_CIRCUIT_BREAKER_METRIC, unit: 'Count', value: 1 }]);
    expect(whenOpen.filter((p) => p.name === CLEANUP_CIRCUIT_BREAKER_METRIC)).toEqual([{ name: CLEANUP_CIRCUIT_BREAKER_METRIC, unit: 'Count', value: 0 }]);
  });

  it("should log an ingested interruption with its account's environment and each instance's pool", async () => {
    // Prepare
    const raw = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', 'state-change-shutting-down.json'), 'utf8'));
    const event = parseInterruptionEvent(raw);
    const appended: unknown[] = [];
    const deps = {
      accounts: { environmentOf: async () => 'STAGING' },
      resolver: {
        resolve: async (account: string, region: string, ids: string[]) =>
          new Map(ids.map((id): [string, InstanceFacts] => [id, { instanceId: id, account, region, lifecycle: 'on-demand', pool: { region, azId: 'use1-az2', instanceType: 'm5.large' } }])),
      },
      ledger: { appendOnce: async (draft: unknown) => (appended.push(draft), { duplicate: false }) },
      publisher: { publish: async () => undefined },
      clock: () => new Date('2026-11-22T10:03:00Z'),
      actor: 'interruption-ingest',
    } as unknown as IngestDeps;
    const lines: { message: string; fields: Record<string, any> }[] = [];
    const tools = {
      logger: { info: (message: string, fields: Record<string, unknown>) => lines.push({ message, fields }) },
      metrics: { addMetric: () => undefined, singleMetric: () => ({ addDimension: () => undefined, addMetric: () => undefined }) },
    };

    // Act
    const outcome = await ingestInterruption(event, deps);
    reportIngest(event, outcome, tools as never);

    // Assess
    expect(appended).toHaveLength(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.message).toBe('interruption ingested');
    expect(lines[0]!.fields.outcome).toMatchObject({ environment: 'STAGING', kind: 'state-change', instances: [{ instanceId: 'i-0b3a5c4d7e8f90123', pool: 'us-east-1/use1-az2/m5.large', action: 'instance.interrupted' }] });
  });
});
