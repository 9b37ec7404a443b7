import { SqsDeadLetters } from '../../shared/dead-letters';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { SqsSchema } from '../../shared/sqs';
import { processSqsRecords } from '../../shared/sqs-records';
import { checkEvent } from '../enforcer';
import { type EnforcementEvent, parseEnforcementEvent } from '../events';
import { enforcerDeps } from '../wiring';
import { type EnforcementCheckEnv, EnforcementCheckEnvSchema } from './env';

const wire = perEnvironment((env: EnforcementCheckEnv) => ({ deps: enforcerDeps(env, 'enforcement-check'), deadLetters: new SqsDeadLetters(env.DEAD_LETTER_QUEUE_URL) }));

/** The event path: each `running` or RunInstances event checks its instances within seconds. */
export const handler = fleetHandler({ envSchema: EnforcementCheckEnvSchema, inputSchema: SqsSchema }, async (event, tools) => {
  const { deps, deadLetters } = wire(tools.env);
  return processSqsRecords(
    event,
    {
      parse: parseEnforcementEvent,
      act: (e: EnforcementEvent) => checkEvent(e, deps),
      deadLetters,
      // Records contend for the ledger's tip: one after another.
      parallel: false,
      onDone: (_e, outcomes) => {
        for (const o of outcomes) if (o.action !== 'unchanged') tools.metrics.addMetric(o.action === 'instance.flagged' ? 'InstancesFlagged' : 'FlagsChanged', 'Count', 1);
      },
    },
    tools,
  );
});
