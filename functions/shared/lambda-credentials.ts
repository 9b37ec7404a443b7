import { fromEnv } from '@aws-sdk/credential-provider-env';

/**
 * `@aws-sdk/credential-provider-node` as the Lambda bundles see it: esbuild replaces that module
 * by this one (an `--alias` in lib/constructs/fleet-function.ts), so every SDK client's default
 * credential provider is the environment provider alone.
 *
 * In Lambda the function's role credentials are always in the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and the SDK's default chain takes them from its
 * first link, `fromEnv`. Its other links (SSO, shared ini files, credential_process, web
 * identity, container and instance metadata, and the STS/SSO clients they bring along) are never
 * reached there, yet they are about 100 KB of every bundle and 16-20 ms of every cold start.
 *
 * What changes: a bundle run outside Lambda with no credentials in its environment fails with
 * the environment provider's "Unable to find environment variable credentials." instead of
 * trying profiles and instance metadata; and AWS_PROFILE no longer takes precedence over the
 * environment keys (Lambda never sets it). Clients given explicit credentials, as the member
 * accounts' clients are (functions/shared/accounts.ts: AssumeRole, then static credentials),
 * never call the default provider at all. The tests and the local harness run the TypeScript
 * sources, where the module is not replaced: they keep the SDK's full chain.
 */
export const defaultProvider = fromEnv;

type Credentials = Awaited<ReturnType<ReturnType<typeof fromEnv>>>;

/** As in @aws-sdk/credential-provider-node: the other two names that module exports. */
export const credentialsWillNeedRefresh = (credentials: Credentials): boolean => credentials?.expiration !== undefined;
export const credentialsTreatedAsExpired = (credentials: Credentials): boolean =>
  credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300_000;
