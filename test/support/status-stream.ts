/**
 * Reads the status table's stream from DynamoDB Local's real Streams API and hands the records to
 * status-summary the way the Lambda event source mapping does (same record shape, same filter on
 * `awaiting`), until the stream is quiet.
 */
import {
  _Record, DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';

export class StatusStream {
  /** The last sequence number delivered, per shard: each read starts right after it. */
  private readonly lastSequence = new Map<string, string>();
  private shardIds?: string[];

  constructor(private readonly client: DynamoDBStreamsClient, public readonly streamArn: string) {}

  /** Every record written since the last read, oldest first, shaped like a Lambda stream event record. */
  public async read(): Promise<DynamoDBRecord[]> {
    // DynamoDB Local keeps one shard per table for the length of a test run: describe it once.
    this.shardIds ??= ((await this.client.send(new DescribeStreamCommand({ StreamArn: this.streamArn }))).StreamDescription?.Shards ?? [])
      .map((shard) => shard.ShardId!);
    const records: DynamoDBRecord[] = [];
    for (const shardId of this.shardIds) records.push(...await this.readShard(shardId));
    return records;
  }

  private async readShard(shardId: string): Promise<DynamoDBRecord[]> {
    // A fresh iterator per read: DynamoDB Local refuses (TrimmedDataAccessException) an iterator
    // kept across empty reads, and a TRIM_HORIZON iterator while the shard is still empty.
    const after = this.lastSequence.get(shardId);
    const { ShardIterator: first } = await this.client.send(new GetShardIteratorCommand({
      StreamArn: this.streamArn,
      ShardId: shardId,
      ...(after ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after } : { ShardIteratorType: 'TRIM_HORIZON' }),
    }));
    const records: DynamoDBRecord[] = [];
    let iterator = first;
    while (iterator) {
      let page;
      try {
        page = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator }));
      } catch (error) {
        if ((error as Error).name === 'TrimmedDataAccessException' && !after && records.length === 0) return records;
        throw error;
      }
      const batch = page.Records ?? [];
      if (batch.length === 0) break;
      records.push(...batch.map((record) => this.toLambdaRecord(record)));
      this.lastSequence.set(shardId, batch[batch.length - 1].dynamodb!.SequenceNumber!);
      iterator = page.NextShardIterator;
    }
    return records;
  }

  private toLambdaRecord(record: _Record): DynamoDBRecord {
    const { ApproximateCreationDateTime, ...dynamodb } = record.dynamodb ?? {};
    return {
      eventID: record.eventID,
      eventName: record.eventName as DynamoDBRecord['eventName'],
      eventVersion: record.eventVersion,
      eventSource: record.eventSource,
      awsRegion: record.awsRegion,
      eventSourceARN: this.streamArn,
      dynamodb: {
        ...dynamodb,
        ApproximateCreationDateTime: ApproximateCreationDateTime ? Math.floor(ApproximateCreationDateTime.getTime() / 1000) : undefined,
      } as DynamoDBRecord['dynamodb'],
    };
  }
}

/** The event source mapping's filter (DESIGN.md): only images that still have `awaiting`. */
export function hasAwaiting(record: DynamoDBRecord): boolean {
  return record.dynamodb?.NewImage?.awaiting !== undefined;
}

/**
 * Delivers new stream records to status-summary in batches until its own writes produce no
 * further matching record. Returns the number of invocations.
 */
export async function pumpStream(stream: StatusStream, statusSummary: (event: DynamoDBStreamEvent) => Promise<unknown>): Promise<number> {
  let invocations = 0;
  for (let round = 0; round < 20; round++) {
    const batch = (await stream.read()).filter(hasAwaiting);
    if (batch.length === 0) return invocations;
    invocations++;
    await statusSummary({ Records: batch });
  }
  throw new Error('status-summary keeps waking itself up (20 rounds)');
}
