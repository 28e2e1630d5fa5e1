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
  /** Where reading continues, per shard. */
  private readonly iterators = new Map<string, string>();

  constructor(private readonly client: DynamoDBStreamsClient, public readonly streamArn: string) {}

  /** Every record written since the last read, oldest first, shaped like a Lambda stream event record. */
  public async read(): Promise<DynamoDBRecord[]> {
    const description = await this.client.send(new DescribeStreamCommand({ StreamArn: this.streamArn }));
    const records: DynamoDBRecord[] = [];
    for (const shard of description.StreamDescription?.Shards ?? []) {
      records.push(...await this.readShard(shard.ShardId!));
    }
    return records;
  }

  private async readShard(shardId: string): Promise<DynamoDBRecord[]> {
    const records: DynamoDBRecord[] = [];
    let iterator = this.iterators.get(shardId);
    // DynamoDB Local answers a fresh TRIM_HORIZON iterator with TrimmedDataAccessException now and
    // then (always while the shard is still empty); a new iterator works once there are records.
    for (let tries = 0; iterator === undefined; tries++) {
      const fresh = (await this.client.send(new GetShardIteratorCommand({ StreamArn: this.streamArn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
      try {
        const page = await this.client.send(new GetRecordsCommand({ ShardIterator: fresh }));
        records.push(...(page.Records ?? []).map((record) => this.toLambdaRecord(record)));
        iterator = page.NextShardIterator;
        if (!iterator) return records;
      } catch (error) {
        if ((error as Error).name !== 'TrimmedDataAccessException') throw error;
        if (tries >= 2) return records; // nothing written to this shard yet: try again on the next read
      }
    }
    for (;;) {
      const page = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator }));
      records.push(...(page.Records ?? []).map((record) => this.toLambdaRecord(record)));
      if (!page.NextShardIterator || (page.Records ?? []).length === 0) {
        if (page.NextShardIterator) iterator = page.NextShardIterator;
        break;
      }
      iterator = page.NextShardIterator;
    }
    this.iterators.set(shardId, iterator);
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
