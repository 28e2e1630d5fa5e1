/**
 * A small in-memory SQS (JSON protocol) for the queue bridge: SNS-to-SQS subscriptions, handlers
 * that send/receive/delete, and SQS event source mappings (batches to a Lambda function; a failed
 * batch becomes visible again after the visibility timeout; FIFO groups are delivered in order).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { LocalEventSourceMapping, LocalQueue } from './assembly';
import { AwsError } from './aws-endpoint';
import type { InvokeResult } from './function-host';
import { endsAtStop } from './sandbox-host';
import { matchesPattern } from '../../../lambda/shared/filter-policy';

interface Message {
  id: string;
  body: string;
  attributes: Record<string, { DataType: string; StringValue?: string }>;
  groupId?: string;
  receiveCount: number;
  visibleAt: number;
  receipt?: string;
  sentAt: number;
}

interface Queue {
  def: LocalQueue;
  messages: Message[];
  visibilityMs: number;
  dlqArn?: string;
  maxReceiveCount?: number;
  /** FIFO: deduplication id -> when it was first sent (SQS drops repeats within 5 minutes). */
  deduplication: Map<string, number>;
}

/** SQS's deduplication interval for FIFO queues. */
const DEDUPLICATION_INTERVAL_MS = 5 * 60 * 1000;

/** A message a receive may take now: visible, and not behind an earlier one of its FIFO group in flight. */
function takeable(m: Message, now: number, blockedGroups: Set<string | undefined>): boolean {
  return m.visibleAt <= now && !(m.groupId && blockedGroups.has(m.groupId));
}

export interface SqsServiceOptions {
  readonly queues: LocalQueue[];
  readonly mappings: LocalEventSourceMapping[];
  readonly invoke: (functionName: string, event: unknown) => Promise<InvokeResult>;
  readonly track: <T>(work: Promise<T>) => Promise<T>;
  readonly region: string;
  /**
   * After a failed batch (the function failed, or reported the message in `batchItemFailures`), the
   * message is visible again after this delay instead of the rest of its visibility timeout (tests:
   * a failing consumer is retried at once, not after minutes). Messages being processed stay
   * invisible for the queue's visibility timeout, as on AWS.
   */
  readonly retryDelayMs?: number;
}

/** Batches of one event source mapping in flight at once (Lambda's SQS pollers start with 5). */
const CONCURRENT_BATCHES = 5;

export class SqsService {
  private readonly queues = new Map<string, Queue>();
  private readonly pollers: NodeJS.Timeout[] = [];
  private readonly waiters = new Set<() => void>();
  /** Queues an event source mapping polls. */
  private readonly polled = new Set<Queue>();

  constructor(private readonly options: SqsServiceOptions) {
    this.addQueues(options.queues);
  }

  /** Adds queues (a further stack deployed into the running engine). */
  public addQueues(defs: LocalQueue[]): void {
    for (const def of defs) {
      const visibilityMs = def.visibilityTimeoutSeconds * 1000;
      this.queues.set(def.arn, {
        def, messages: [], visibilityMs, dlqArn: def.deadLetterTargetArn, maxReceiveCount: def.maxReceiveCount, deduplication: new Map(),
      });
    }
  }

  public send(queueArnOrUrl: string, body: string, attributes: Message['attributes'] = {}, groupId?: string, deduplicationId?: string): string {
    const q = this.queue(queueArnOrUrl);
    if (q.def.fifo) {
      if (!groupId) throw new AwsError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
      // Without an explicit id: content-based deduplication (SHA-256 of the body).
      const key = deduplicationId ?? createHash('sha256').update(body).digest('hex');
      const now = Date.now();
      for (const [seen, at] of q.deduplication) if (now - at >= DEDUPLICATION_INTERVAL_MS) q.deduplication.delete(seen);
      // A repeat within the interval is accepted but not delivered again (same message id).
      if (q.deduplication.has(key)) return `deduplicated-${key.slice(0, 16)}`;
      q.deduplication.set(key, now);
    }
    const id = randomUUID();
    q.messages.push({ id, body, attributes, groupId, receiveCount: 0, visibleAt: 0, sentAt: Date.now() });
    for (const wake of this.waiters) wake();
    return id;
  }

  public start() {
    for (const mapping of this.options.mappings.filter((m) => m.enabled && this.queues.has(m.sourceArn))) {
      this.polled.add(this.queues.get(mapping.sourceArn)!);
      // Several batches at once, as Lambda polls a queue: FIFO groups are still taken one message at a time.
      let inFlight = 0;
      const timer = setInterval(() => {
        while (inFlight < CONCURRENT_BATCHES) {
          const batch = this.receive(this.queues.get(mapping.sourceArn)!, mapping.batchSize);
          if (!batch.length) return;
          inFlight++;
          void this.options.track(this.processBatch(mapping, batch).catch(endsAtStop)).finally(() => { inFlight--; });
        }
      }, 20);
      timer.unref();
      this.pollers.push(timer);
    }
  }

  public stop() {
    for (const t of this.pollers.splice(0)) clearInterval(t);
    this.polled.clear();
    for (const wake of this.waiters) wake();
  }

  public async handleApi(operation: string, body: any): Promise<unknown> {
    switch (operation) {
      case 'SendMessage':
        return this.sendResult(
          this.send(body.QueueUrl, body.MessageBody, body.MessageAttributes, body.MessageGroupId, body.MessageDeduplicationId), body.MessageBody);
      case 'SendMessageBatch':
        return {
          Successful: (body.Entries ?? []).map((e: any) => ({
            Id: e.Id,
            ...this.sendResult(
              this.send(body.QueueUrl, e.MessageBody, e.MessageAttributes, e.MessageGroupId, e.MessageDeduplicationId), e.MessageBody),
          })),
          Failed: [],
        };
      case 'ReceiveMessage': {
        const q = this.queue(body.QueueUrl);
        const deadline = Date.now() + Number(body.WaitTimeSeconds ?? 0) * 1000;
        for (;;) {
          const batch = this.receive(q, Number(body.MaxNumberOfMessages ?? 1), body.VisibilityTimeout);
          if (batch.length || Date.now() >= deadline) return { Messages: batch.map((m) => this.toApiMessage(m)) };
          await this.waitForMessage(deadline - Date.now());
        }
      }
      case 'DeleteMessage':
        this.delete(body.QueueUrl, body.ReceiptHandle);
        return {};
      case 'DeleteMessageBatch':
        for (const e of body.Entries ?? []) this.delete(body.QueueUrl, e.ReceiptHandle);
        return { Successful: (body.Entries ?? []).map((e: any) => ({ Id: e.Id })), Failed: [] };
      case 'ChangeMessageVisibility': {
        const m = this.queue(body.QueueUrl).messages.find((x) => x.receipt === body.ReceiptHandle);
        if (m) m.visibleAt = Date.now() + Number(body.VisibilityTimeout) * 1000;
        return {};
      }
      case 'GetQueueUrl': {
        const q = [...this.queues.values()].find((x) => x.def.name === body.QueueName);
        if (!q) throw new AwsError('QueueDoesNotExist', `The specified queue does not exist: ${body.QueueName}`);
        return { QueueUrl: q.def.url };
      }
      case 'GetQueueAttributes': {
        const q = this.queue(body.QueueUrl);
        const now = Date.now();
        return {
          Attributes: {
            QueueArn: q.def.arn,
            ApproximateNumberOfMessages: String(q.messages.filter((m) => m.visibleAt <= now).length),
            ApproximateNumberOfMessagesNotVisible: String(q.messages.filter((m) => m.visibleAt > now).length),
            VisibilityTimeout: String(q.visibilityMs / 1000),
          },
        };
      }
      case 'PurgeQueue':
        this.queue(body.QueueUrl).messages.length = 0;
        return {};
      default:
        throw new AwsError('UnsupportedOperation', `The local engine does not emulate SQS ${operation}`);
    }
  }

  /** Messages currently in a queue (visible or not), for tests. */
  public messages(queueArnOrUrl: string): { body: string; attributes: Message['attributes'] }[] {
    return this.queue(queueArnOrUrl).messages.map((m) => ({ body: m.body, attributes: m.attributes }));
  }

  private sendResult(id: string, body: string) {
    return { MessageId: id, MD5OfMessageBody: createHash('md5').update(body).digest('hex') };
  }

  private queue(arnOrUrl: string): Queue {
    const q = this.queues.get(arnOrUrl) ?? [...this.queues.values()].find((x) => x.def.url === arnOrUrl || arnOrUrl.endsWith(`/${x.def.name}`));
    if (!q) throw new AwsError('AWS.SimpleQueueService.NonExistentQueue', `The specified queue does not exist: ${arnOrUrl}`);
    return q;
  }

  /**
   * Whether a queue that an event source mapping polls holds a message its poller would take now:
   * work not yet started (`LocalEngine.idle()` waits for it). Messages held back (a delay, a
   * visibility timeout, a FIFO group's turn) are not.
   */
  public hasWaitingDeliveries(): boolean {
    const now = Date.now();
    for (const q of this.polled) {
      const blocked = this.blockedGroups(q, now);
      if (q.messages.some((m) => takeable(m, now, blocked))) return true;
    }
    return false;
  }

  /** FIFO: the groups with a message in flight; each group's next message waits, so a group is processed in order. */
  private blockedGroups(q: Queue, now: number): Set<string | undefined> {
    return new Set(q.def.fifo ? q.messages.filter((m) => m.groupId && m.visibleAt > now).map((m) => m.groupId) : []);
  }

  private receive(q: Queue, max: number, visibilitySeconds?: number): Message[] {
    const now = Date.now();
    const out: Message[] = [];
    const blockedGroups = this.blockedGroups(q, now);
    for (const m of [...q.messages]) {
      if (out.length >= max) break;
      if (!takeable(m, now, blockedGroups)) continue;
      if (q.maxReceiveCount && q.dlqArn && m.receiveCount >= q.maxReceiveCount) {
        q.messages.splice(q.messages.indexOf(m), 1);
        this.moveToDeadLetterQueue(q.dlqArn, m);
        continue;
      }
      m.receiveCount++;
      m.receipt = randomUUID();
      m.visibleAt = now + (visibilitySeconds !== undefined ? Number(visibilitySeconds) * 1000 : q.visibilityMs);
      if (m.groupId) blockedGroups.add(m.groupId);
      out.push(m);
    }
    return out;
  }

  /** SQS's redrive: the message itself moves (FIFO deduplication does not apply). */
  private moveToDeadLetterQueue(dlqArn: string, m: Message) {
    const dlq = this.queue(dlqArn);
    dlq.messages.push({ ...m, receiveCount: 0, visibleAt: 0, receipt: undefined });
    for (const wake of this.waiters) wake();
  }

  private delete(queueUrl: string, receipt: string) {
    const q = this.queue(queueUrl);
    const i = q.messages.findIndex((m) => m.receipt === receipt);
    if (i >= 0) q.messages.splice(i, 1);
  }

  private toApiMessage(m: Message) {
    return {
      MessageId: m.id,
      ReceiptHandle: m.receipt,
      Body: m.body,
      MD5OfBody: createHash('md5').update(m.body).digest('hex'),
      Attributes: systemAttributes(m),
      MessageAttributes: m.attributes,
    };
  }

  private waitForMessage(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  /** One batch of an SQS event source mapping to its function; deleted on success. */
  private async processBatch(mapping: LocalEventSourceMapping, batch: Message[]) {
    const q = this.queues.get(mapping.sourceArn)!;
    const records = batch.map((m) => ({
      messageId: m.id,
      receiptHandle: m.receipt,
      body: m.body,
      attributes: systemAttributes(m),
      messageAttributes: Object.fromEntries(Object.entries(m.attributes).map(([k, a]) => [k, { dataType: a.DataType, stringValue: a.StringValue }])),
      md5OfBody: createHash('md5').update(m.body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: q.def.arn,
      awsRegion: this.options.region,
    }));
    // Filtered-out messages are deleted without invoking, as Lambda does for SQS.
    const kept = records.filter((r) => !mapping.filterPatterns.length || mapping.filterPatterns.some((p) => matchesPattern(p, withParsedBody(r))));
    for (const r of records.filter((x) => !kept.includes(x))) this.delete(q.def.arn, r.receiptHandle!);
    if (!kept.length) return;
    const result = await this.options.invoke(mapping.functionName, { Records: kept });
    let failed = new Set<string>(kept.map((r) => r.messageId)); // a failed invocation fails the whole batch
    if (result.ok) {
      const response = mapping.reportBatchItemFailures ? JSON.parse(result.payload ?? 'null') : undefined;
      failed = new Set((response?.batchItemFailures ?? []).map((f: { itemIdentifier: string }) => f.itemIdentifier));
    }
    for (const r of kept) if (!failed.has(r.messageId)) this.delete(q.def.arn, r.receiptHandle!);
    // Failed messages reappear after the visibility timeout (or the engine's retry delay).
    const retryDelay = this.options.retryDelayMs;
    if (retryDelay !== undefined) {
      for (const m of batch) {
        if (failed.has(m.id) && m.receipt !== undefined) m.visibleAt = Math.min(m.visibleAt, Date.now() + retryDelay);
      }
    }
  }
}

function systemAttributes(m: Message): Record<string, string> {
  return { ApproximateReceiveCount: String(m.receiveCount), SentTimestamp: String(m.sentAt), ...(m.groupId ? { MessageGroupId: m.groupId } : {}) };
}

/** Lambda filters SQS records on the body parsed as JSON when it is JSON. */
function withParsedBody(record: { body: string }) {
  try {
    return { ...record, body: JSON.parse(record.body) };
  } catch {
    return record;
  }
}
