import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * One place that builds AWS SDK v3 clients, so that every adapter honours the emulator endpoint
 * override (`FLEETWARDEN_AWS_ENDPOINT`, set by the local harness to moto) and nothing else
 * needs to know about it. In Lambda the variable is unset and the SDK's defaults apply.
 */
export interface AwsClientOptions {
  region?: string;
  /**
   * A named profile of the shared config and credentials files (the operator CLI's `--profile`):
   * its credentials, and its region unless one is given or set in the environment, as the AWS CLI.
   */
  profile?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

type ClientConfig = {
  region?: string;
  profile?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  maxAttempts?: number;
  credentials?: AwsClientOptions['credentials'];
};

export function awsClientConfig(options: AwsClientOptions = {}): ClientConfig {
  const endpoint = process.env.FLEETWARDEN_AWS_ENDPOINT;
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  // With a profile and no region given, the SDK reads the profile's region (and fails without one, as the AWS CLI does).
  const config: ClientConfig = { maxAttempts: 5 };
  if (region || !options.profile) config.region = region ?? 'us-east-1';
  if (options.profile) config.profile = options.profile;
  if (options.credentials) config.credentials = options.credentials;
  if (endpoint) {
    config.endpoint = endpoint;
    // moto serves S3 on the same host, so buckets must be in the path, not the host name.
    config.forcePathStyle = true;
    config.credentials ??= { accessKeyId: 'testing', secretAccessKey: 'testing' };
  }
  return config;
}

const cache = new Map<string, unknown>();

/** A memoised client per (class, region, profile, endpoint): clients are reused across warm invocations. */
export function awsClient<C>(Client: new (config: ClientConfig) => C, options: AwsClientOptions = {}): C {
  const config = awsClientConfig(options);
  if (options.credentials) return new Client(config);
  const key = `${Client.name}|${config.region ?? ''}|${config.profile ?? ''}|${config.endpoint ?? ''}`;
  let client = cache.get(key) as C | undefined;
  if (!client) {
    client = new Client(config);
    cache.set(key, client);
  }
  return client;
}

/** DynamoDB document client over the shared client; undefined members are dropped, as canonical JSON drops them. */
export function documentClient(options: AwsClientOptions = {}): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(awsClient(DynamoDBClient, options), { marshallOptions: { removeUndefinedValues: true } });
}
