/**
 * DynamoDB stream consumers driven by DynamoDB Local's real Streams API, with Lambda event-source
 * semantics: each consumer sees every record once, in order per shard; records failing the
 * mapping's filter patterns are dropped; batches hold up to BatchSize records; a failed batch is
 * retried whole (bounded by MaximumRetryAttempts; split in halves with BisectBatchOnFunctionError;
 * partial retries with ReportBatchItemFailures) and, when retries run out, described to the
 * on-failure destination and skipped.
 */
import { randomUUID } from 'node:crypto';
import type { LocalEventSourceMapping } from './assembly';
import type { DynamoDbJsonClient } from './dynamodb-json-client';
import type { InvokeResult } from './function-host';
import { sleep } from './lambda-service';
import { matchesPattern } from '../../../lambda/shared/filter-policy';

/** A stream record in the shape Lambda delivers (`Records[]` of a DynamoDB stream event). */
export interface StreamEventRecord {
  eventID: string;
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  eventVersion: string;
  eventSource: 'aws:dynamodb';
  awsRegion: string;
  eventSourceARN: string;
  dynamodb: Record<string, any>;
}

export interface StreamConsumer {
  /** Handles records in order; resolves when they are done (consumers keep their own queue). */
  enqueue(records: StreamEventRecord[], shardId: string): void;
  idle(): boolean;
}

export interface StreamReaderOptions {
  readonly client: DynamoDbJsonClient;
  /** DynamoDB Local's stream ARN for the table. */
  readonly localStreamArn: string;
  /** The stable ARN the templates use (`<tableArn>/stream/local`), reported as `eventSourceARN`. */
  readonly eventSourceArn: string;
  readonly region: string;
  readonly consumers: StreamConsumer[];
  /**
   * Poll interval when nothing wakes the reader (writes through the engine's endpoint do, see `wake`).
   * It doubles after each poll that finds nothing, up to IDLE_POLL_FACTOR times, and starts again
   * from here when the reader is woken or finds records: an idle engine costs DynamoDB Local little.
   */
  readonly pollIntervalMs: number;
  readonly onError: (error: unknown) => void;
}

/** Records asked for per GetRecords call (the API's maximum). */
const GET_RECORDS_LIMIT = 1000;
/**
 * A write wakes the reader this long after it, not at once: the writes of a busy moment (concurrent
 * runs, a handler's update right after another's) are read by one GetRecords, which costs DynamoDB
 * Local about what a write does.
 */
const WAKE_COALESCE_MS = 3;
/**
 * While writes keep coming (each poll finds records and another write woke the reader during it),
 * the wait before the next poll doubles from WAKE_COALESCE_MS up to this: one GetRecords then reads
 * the writes of many concurrent runs. Measured with 400 activity runs at once: GetRecords per run
 * 3.0 -> 1.0, DynamoDB Local's CPU per run 20 -> 18 ms. Lambda polls a shard about four times a
 * second: records still reach their functions sooner than on AWS.
 */
const BUSY_COALESCE_MAX_MS = 24;
/** How far the poll interval grows while nothing happens (x pollIntervalMs). */
const IDLE_POLL_FACTOR = 10;
/**
 * How often the stream's shards are described, besides when a shard closes (its children are
 * described at once): a new shard only appears when one closes.
 */
const DESCRIBE_INTERVAL_MS = 5000;

/** `baseMs` doubled after each of `times` polls in a row past the first, at most `maxMs`. */
function doubledMs(baseMs: number, times: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, times - 1));
}

/** The wait before the next poll after `busyPolls` busy polls in a row (0 or 1: WAKE_COALESCE_MS). */
export function busyWaitMs(busyPolls: number): number {
  return doubledMs(WAKE_COALESCE_MS, busyPolls, BUSY_COALESCE_MAX_MS);
}

/** A record of a GetRecords answer, as JSON. */
interface WireRecord { eventID: string; eventName: string; eventVersion?: string; dynamodb?: Record<string, any> }

interface ShardState { id: string; parent?: string; iterator?: string; finished: boolean }

/** Reads one table's stream (every shard, parents before children) and fans records out. */
export class StreamReader {
  /** True when the last poll found no new records in DynamoDB Local. */
  public caughtUp = false;
  /** GetRecords calls made, and the records they returned (engine.counters().streamReads). */
  public readonly reads = { getRecords: 0, records: 0 };
  private readonly shards = new Map<string, ShardState>();
  private running = false;
  private loop?: Promise<void>;
  private lastDescribe = 0;
  /** Ends the current wait between polls early. */
  private wakeUp?: () => void;
  private woken = false;
  /** Set while a wake waits WAKE_COALESCE_MS to end the pause. */
  private wakeTimer?: NodeJS.Timeout;
  /** Polls in a row that found nothing and were not woken for: the next wait grows with them. */
  private emptyPolls = 0;
  /** Polls in a row that found records and were woken for during them: the next wait grows with them. */
  private busyPolls = 0;

  constructor(private readonly options: StreamReaderOptions) {}

  public start() {
    this.running = true;
    this.loop = this.run();
  }

  public async stop() {
    this.running = false;
    clearTimeout(this.wakeTimer);
    this.wakeUp?.();
    await this.loop;
  }

  /**
   * Polls again at once (a write may have added records). Not caught up until that poll has run,
   * so `LocalEngine.idle()` cannot miss the write's records.
   */
  public wake() {
    this.caughtUp = false;
    this.woken = true;
    if (this.wakeTimer || !this.wakeUp) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeUp?.();
    }, WAKE_COALESCE_MS);
  }

  private async run() {
    while (this.running) {
      this.woken = false;
      let more = false;
      let found = false;
      try {
        if (Date.now() - this.lastDescribe > DESCRIBE_INTERVAL_MS || this.shards.size === 0) await this.describe();
        for (const shard of this.shards.values()) {
          if (shard.finished) continue;
          const parent = shard.parent ? this.shards.get(shard.parent) : undefined;
          if (parent && !parent.finished) continue; // in order: a child waits for its parent
          const polled = await this.poll(shard);
          if (polled.more) more = true;
          if (polled.records) found = true;
        }
        this.emptyPolls = found || this.woken ? 0 : this.emptyPolls + 1;
      } catch (e) {
        this.options.onError(e);
      }
      // Caught up: every record that existed when the poll began is read (the next poll would find
      // none). A wake during the poll may come after DynamoDB Local answered it: poll once more.
      this.caughtUp = !more && !this.woken;
      this.busyPolls = found && this.woken ? this.busyPolls + 1 : 0;
      // Stopped during the poll: nothing would end the pause but its timer.
      if (this.caughtUp && this.running) await this.pause();
      // Woken meanwhile: let the writes of the moment land first, longer while they keep coming.
      else if (!more && this.running) await sleep(busyWaitMs(this.busyPolls));
    }
  }

  /** Waits the poll interval (longer the longer nothing happened), or less when woken. */
  private pause(): Promise<void> {
    const intervalMs = doubledMs(this.options.pollIntervalMs, this.emptyPolls, this.options.pollIntervalMs * IDLE_POLL_FACTOR);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, intervalMs);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeUp = undefined;
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async describe() {
    this.lastDescribe = Date.now();
    let start: string | undefined;
    do {
      const out = await this.options.client.call('DescribeStream', { StreamArn: this.options.localStreamArn, ExclusiveStartShardId: start });
      for (const s of out.StreamDescription?.Shards ?? []) {
        if (!this.shards.has(s.ShardId!)) this.shards.set(s.ShardId!, { id: s.ShardId!, parent: s.ParentShardId, finished: false });
      }
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
  }

  /**
   * Reads the shard's next records. `more`: more may be waiting (a full page, a new iterator, child
   * shards); `records`: how many it read.
   */
  private async poll(shard: ShardState): Promise<{ more: boolean; records: number }> {
    if (!shard.iterator) {
      const out = await this.options.client.call('GetShardIterator', {
        StreamArn: this.options.localStreamArn, ShardId: shard.id, ShardIteratorType: 'TRIM_HORIZON',
      });
      shard.iterator = out.ShardIterator;
    }
    let out;
    try {
      out = await this.options.client.call('GetRecords', { ShardIterator: shard.iterator, Limit: GET_RECORDS_LIMIT });
    } catch (e: any) {
      // DynamoDB Local can reject a first iterator (TrimmedDataAccessException); a new one works.
      if (e?.name === 'TrimmedDataAccessException' || e?.name === 'ExpiredIteratorException') {
        shard.iterator = undefined;
        return { more: true, records: 0 };
      }
      throw e;
    }
    shard.iterator = out.NextShardIterator;
    const records = (out.Records ?? []).map((r: WireRecord) => this.toEvent(r));
    this.reads.getRecords++;
    this.reads.records += records.length;
    if (records.length) for (const consumer of this.options.consumers) consumer.enqueue(records, shard.id);
    if (!shard.iterator) {
      // A closed shard: its children are read next (described at once).
      shard.finished = true;
      this.lastDescribe = 0;
      return { more: true, records: records.length };
    }
    return { more: records.length >= GET_RECORDS_LIMIT, records: records.length };
  }

  /** DynamoDB Local's record as Lambda delivers it (its `dynamodb` part is already in Lambda's wire shape). */
  private toEvent(r: WireRecord): StreamEventRecord {
    return {
      eventID: r.eventID,
      eventName: r.eventName as StreamEventRecord['eventName'],
      eventVersion: r.eventVersion ?? '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: this.options.region,
      eventSourceARN: this.options.eventSourceArn,
      dynamodb: r.dynamodb ?? {},
    };
  }
}

export interface MappingConsumerOptions {
  readonly mapping: LocalEventSourceMapping;
  readonly functionArn: string;
  readonly invoke: (functionName: string, event: unknown) => Promise<InvokeResult>;
  readonly deliverToDestination: (arn: string, record: unknown) => Promise<void>;
  readonly track: <T>(work: Promise<T>) => Promise<T>;
  readonly onLog: (line: string) => void;
}

/** One event source mapping: its own queue, one batch in flight at a time (in order). */
export class MappingConsumer implements StreamConsumer {
  public delivered = 0;
  public filteredOut = 0;
  private readonly queue: { record: StreamEventRecord; shardId: string }[] = [];
  private busy = false;

  constructor(private readonly options: MappingConsumerOptions) {}

  public enqueue(records: StreamEventRecord[], shardId: string) {
    const { filterPatterns } = this.options.mapping;
    for (const record of records) {
      // Lambda evaluates filters before batching; a record that matches no filter is dropped.
      if (filterPatterns.length && !filterPatterns.some((p) => matchesPattern(p, record))) {
        this.filteredOut++;
        continue;
      }
      this.queue.push({ record, shardId });
    }
    if (!this.busy && this.queue.length) {
      this.busy = true;
      // A batch still being retried when the engine stops ends there (its function is gone).
      const pumped = this.pump().catch((e) => this.options.onLog(`batch abandoned: ${(e as Error).message}`));
      void this.options.track(pumped.finally(() => { this.busy = false; }));
    }
  }

  public idle(): boolean {
    return !this.busy && this.queue.length === 0;
  }

  private async pump() {
    while (this.queue.length) {
      const shardId = this.queue[0].shardId;
      const batch: StreamEventRecord[] = [];
      while (batch.length < this.options.mapping.batchSize && this.queue.length && this.queue[0].shardId === shardId) {
        batch.push(this.queue.shift()!.record);
      }
      await this.process(batch, shardId, 0);
    }
  }

  /** Processes a batch until it succeeds, is split, or runs out of retries. */
  private async process(batch: StreamEventRecord[], shardId: string, retriesSoFar: number): Promise<void> {
    const { mapping } = this.options;
    let records = batch;
    let retries = retriesSoFar;
    for (;;) {
      const result = await this.options.invoke(mapping.functionName, { Records: records });
      let failedFrom = -1;
      if (result.ok && mapping.reportBatchItemFailures) {
        const failures: { itemIdentifier?: string }[] = JSON.parse(result.payload ?? 'null')?.batchItemFailures ?? [];
        if (failures.length) {
          const ids = new Set(failures.map((f) => f.itemIdentifier));
          failedFrom = records.findIndex((r) => ids.has(r.dynamodb.SequenceNumber));
          if (failedFrom < 0) failedFrom = 0; // an unknown identifier fails the whole batch, as in Lambda
        }
      }
      if (result.ok && failedFrom < 0) {
        this.delivered += records.length;
        return;
      }
      if (failedFrom > 0) {
        this.delivered += failedFrom; // checkpoint: records before the first failure are done
        records = records.slice(failedFrom);
      }
      const limit = mapping.maximumRetryAttempts < 0 ? Infinity : mapping.maximumRetryAttempts;
      const reason = result.ok ? 'batch item failures' : `${result.error.errorType}: ${result.error.errorMessage}`;
      if (retries >= limit) {
        this.options.onLog(`${mapping.functionName}: batch of ${records.length} dropped after ${retries} retries (${reason})`);
        await this.sendToFailureDestination(records, shardId, retries + 1, result);
        return;
      }
      retries++;
      this.options.onLog(`${mapping.functionName}: retrying batch of ${records.length} (attempt ${retries + 1}; ${reason})`);
      await sleep(Math.min(100 * 2 ** Math.min(retries - 1, 5), 2000));
      if (mapping.bisectBatchOnFunctionError && records.length > 1) {
        const half = Math.ceil(records.length / 2);
        await this.process(records.slice(0, half), shardId, retries);
        await this.process(records.slice(half), shardId, retries);
        return;
      }
    }
  }

  private async sendToFailureDestination(records: StreamEventRecord[], shardId: string, invokeCount: number, result: InvokeResult) {
    const destination = this.options.mapping.onFailureArn;
    if (!destination) return;
    await this.options.deliverToDestination(destination, {
      requestContext: { requestId: randomUUID(), functionArn: this.options.functionArn, condition: 'RetryAttemptsExhausted', approximateInvokeCount: invokeCount },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: result.ok ? undefined : 'Unhandled' },
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        batchSize: records.length,
        streamArn: records[0].eventSourceARN,
        startSequenceNumber: records[0].dynamodb.SequenceNumber,
        endSequenceNumber: records[records.length - 1].dynamodb.SequenceNumber,
        approximateArrivalOfFirstRecord: new Date(records[0].dynamodb.ApproximateCreationDateTime * 1000).toISOString(),
        approximateArrivalOfLastRecord: new Date(records[records.length - 1].dynamodb.ApproximateCreationDateTime * 1000).toISOString(),
      },
    });
  }
}

/** A consumer that hands records to a callback (the engine's timeline), in order. */
export class CallbackConsumer implements StreamConsumer {
  constructor(private readonly callback: (records: StreamEventRecord[]) => void) {}
  public enqueue(records: StreamEventRecord[]) {
    this.callback(records);
  }
  public idle(): boolean {
    return true;
  }
}
