import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { InvalidEnvironmentError } from './errors';
import { describeIssues, parseOrThrow } from './validation';

export const logger = new Logger();
export const metrics = new Metrics();
export const tracer = new Tracer();

export interface HandlerTools<Env> {
  env: Env;
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
  lambda: Context;
}

export interface HandlerSpec<E extends z.ZodType, I extends z.ZodType> {
  /** The function's environment schema, the same one its CDK construct is typed from. */
  envSchema: E;
  /** The event schema; the use case only ever sees parsed data. */
  inputSchema: I;
}

/**
 * Validates process.env against the function's schema once per cold start: once per environment
 * object (the local harness gives each function's warm container its own, new when it changes).
 */
export function environment<E extends z.ZodType>(schema: E): MiddlewareObj & { current: () => z.infer<E> } {
  let parsed: { source: NodeJS.ProcessEnv; value: z.infer<E> } | undefined;
  const current = () => {
    if (parsed?.source !== process.env) {
      const result = schema.safeParse(process.env);
      if (!result.success) {
        throw new InvalidEnvironmentError(`invalid function environment: ${describeIssues(result.error)}`);
      }
      parsed = { source: process.env, value: result.data };
    }
    return parsed.value;
  };
  return { before: () => void current(), current };
}

/**
 * The Middy bundle every Fleetwarden handler shares: Powertools logger (with the Lambda context),
 * tracer, metrics (cold start metric), environment validation, then zod parsing of the event.
 * The use case receives typed input and typed env; a bad event throws Terminal.InvalidInput.
 */
export function fleetHandler<E extends z.ZodType, I extends z.ZodType, R>(
  spec: HandlerSpec<E, I>,
  useCase: (input: z.infer<I>, tools: HandlerTools<z.infer<E>>) => Promise<R>,
) {
  const env = environment(spec.envSchema);
  return middy<unknown, R, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(captureLambdaHandler(tracer))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use(env)
    .handler(async (event, lambda) => {
      const input = parseOrThrow(spec.inputSchema, event, 'event');
      return useCase(input, { env: env.current(), logger, metrics, tracer, lambda });
    });
}

/**
 * Adapters built once per cold start: `build` runs again only when the validated environment
 * object changes (the local harness gives each function's warm container its own).
 */
export function perEnvironment<E, T>(build: (env: E) => T): (env: E) => T {
  let built: { env: E; value: T } | undefined;
  return (env) => {
    if (built?.env !== env) built = { env, value: build(env) };
    return built.value;
  };
}
