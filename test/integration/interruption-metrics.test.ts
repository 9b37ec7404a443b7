import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deliverToQueue } from '../../local/sqs-source';
import { fixture, freshStack, launchInstance } from '../support';

afterEach(() => {
  vi.restoreAllMocks();
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

describe('interruption metrics (CloudWatch EMF)', () => {
  it('emits events by detail-type, quarantines, event age and handler latency', async () => {
    // A fresh module graph with metrics on: the Powertools Metrics singleton reads its switch at import.
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    vi.resetModules();
    const { pumpQueue } = await import('../../local/sqs-source');
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(String(chunk));
      return write(chunk as never, ...(rest as []));
    });

    const stack = await freshStack();
    const instanceId = await launchInstance('111111111111');
    await deliverToQueue(stack, 'InterruptionsEventsQueue', [
      // Recent: a PROD interruption older than the quarantine it would start quarantines nothing.
      fixture('spot-interruption-warning', { id: randomUUID(), account: '111111111111', instanceId, time: new Date(Date.now() - 60_000).toISOString() }),
      fixture('state-change-shutting-down', { id: randomUUID(), account: '111111111111', instanceId, time: new Date(Date.now() - 30_000).toISOString() }),
    ]);
    await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest');

    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, any>);
    const metricNames = emf.flatMap((m) => m._aws.CloudWatchMetrics.flatMap((c: { Metrics: { Name: string }[] }) => c.Metrics.map((x) => x.Name)));
    expect(metricNames).toEqual(expect.arrayContaining(['InterruptionEvents', 'PoolsQuarantined', 'EventAgeAtIngest', 'HandlerLatency']));
    const byType = emf.filter((m) => m.InterruptionEvents !== undefined).map((m) => m.DetailType).sort();
    expect(byType).toEqual(['EC2 Instance State-change Notification', 'EC2 Spot Instance Interruption Warning']);
    expect(emf.every((m) => m._aws.CloudWatchMetrics[0].Namespace === 'Fleetwarden')).toBe(true);
  });
});
