import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type _Record } from '@aws-sdk/client-dynamodb-streams';
import { awsClient } from '../functions/shared/aws';
import type { LocalStack } from './provision';
import { invokeFunction } from './stepfunctions';

/**
 * Lambda's DynamoDB Streams event source mapping, locally: read the table's stream from where the
 * last successful batch ended (its checkpoint), hand the function a batch of up to `batchSize`
 * records in the exact shape Lambda sends, and move the checkpoint only when the function
 * succeeded (a failed batch is delivered again by the next pump, as Lambda retries it).
 * `expire: true` drops every record not yet delivered, as a stream does after 24 hours: what a
 * stopped archiver would never see.
 */
export interface StreamPumpResult {
  batches: number;
  records: number;
  failed: number;
  error?: Error;
}

const checkpoints = new Map<string, string | undefined>();

function streamsClient(): DynamoDBStreamsClient {
  return awsClient(DynamoDBStreamsClient);
}

async function streamOf(stack: LocalStack, tableLogicalPrefix: string) {
  const table = await awsClient(DynamoDBClient).send(new DescribeTableCommand({ TableName: stack.ref(tableLogicalPrefix) }));
  const arn = table.Table?.LatestStreamArn;
  if (!arn) throw new Error(`${tableLogicalPrefix} has no stream`);
  const shards = (await streamsClient().send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription?.Shards ?? [];
  if (shards.length !== 1) throw new Error(`expected one shard in the local stream of ${tableLogicalPrefix}, found ${shards.length}`);
  return { arn, shardId: shards[0]!.ShardId! };
}

/** Every record after the checkpoint, oldest first. */
async function pending(arn: string, shardId: string): Promise<_Record[]> {
  const after = checkpoints.get(arn);
  const iterator = await streamsClient().send(
    new GetShardIteratorCommand({ StreamArn: arn, ShardId: shardId, ...(after ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after } : { ShardIteratorType: 'TRIM_HORIZON' }) }),
  );
  const records: _Record[] = [];
  let next = iterator.ShardIterator;
  while (next) {
    const out = await streamsClient().send(new GetRecordsCommand({ ShardIterator: next, Limit: 1000 }));
    records.push(...(out.Records ?? []));
    if (!out.Records?.length) break;
    next = out.NextShardIterator;
  }
  return records;
}

/** A stream record as Lambda's event carries it (epoch seconds, the mapping's source ARN). */
const asLambdaRecord = (record: _Record, arn: string, region: string) => ({
  eventID: record.eventID,
  eventName: record.eventName,
  eventVersion: record.eventVersion ?? '1.1',
  eventSource: 'aws:dynamodb',
  awsRegion: region,
  eventSourceARN: arn,
  dynamodb: {
    ...record.dynamodb,
    ApproximateCreationDateTime: record.dynamodb?.ApproximateCreationDateTime ? Math.floor(record.dynamodb.ApproximateCreationDateTime.getTime() / 1000) : undefined,
  },
});

export async function pumpStream(stack: LocalStack, tableLogicalPrefix: string, functionLogicalPrefix: string, options: { batchSize?: number; expire?: boolean } = {}): Promise<StreamPumpResult> {
  const { arn, shardId } = await streamOf(stack, tableLogicalPrefix);
  const records = await pending(arn, shardId);
  const result: StreamPumpResult = { batches: 0, records: 0, failed: 0 };
  if (options.expire) {
    if (records.length) checkpoints.set(arn, records.at(-1)!.dynamodb!.SequenceNumber);
    return result;
  }
  const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith(functionLogicalPrefix));
  if (!fn) throw new Error(`no local function ${functionLogicalPrefix}*`);
  const size = options.batchSize ?? 1000;
  for (let at = 0; at < records.length; at += size) {
    const batch = records.slice(at, at + size);
    result.batches += 1;
    try {
      await invokeFunction(stack, fn, { Records: batch.map((r) => asLambdaRecord(r, arn, stack.pseudo.region)) });
    } catch (error) {
      result.failed += batch.length;
      result.error = error as Error;
      return result; // the checkpoint stays: the next pump delivers this batch again
    }
    result.records += batch.length;
    checkpoints.set(arn, batch.at(-1)!.dynamodb!.SequenceNumber);
  }
  return result;
}
