import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * One place that builds AWS SDK v3 clients, so that every adapter honours the emulator endpoint
 * override (`FLEETWARDEN_AWS_ENDPOINT`, set by the local harness to moto) and nothing else
 * needs to know about it. In Lambda the variable is unset and the SDK's defaults apply.
 */
export interface AwsClientOptions {
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

type ClientConfig = {
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  maxAttempts?: number;
  credentials?: AwsClientOptions['credentials'];
};

export function awsClientConfig(options: AwsClientOptions = {}): ClientConfig {
  const endpoint = process.env.FLEETWARDEN_AWS_ENDPOINT;
  const config: ClientConfig = {
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    maxAttempts: 5,
  };
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

/** A memoised client per (class, region, endpoint): clients are reused across warm invocations. */
export function awsClient<C>(Client: new (config: ClientConfig) => C, options: AwsClientOptions = {}): C {
  const config = awsClientConfig(options);
  if (options.credentials) return new Client(config);
  const key = `${Client.name}|${config.region}|${config.endpoint ?? ''}`;
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
