/**
 * SNS: topics and subscriptions from the templates (plus `Subscribe` at run time), `Publish` /
 * `PublishBatch` over the Query protocol. A publish reaches every subscription of the topic whose
 * filter policy accepts it (the shared evaluator in lambda/shared/filter-policy.ts); Lambda
 * subscribers are invoked asynchronously with the SNS event shape (so Lambda's async retries and
 * destinations apply), SQS subscribers get the SNS envelope (or the raw message).
 */
import { randomUUID } from 'node:crypto';
import type { LocalSubscription, LocalTopic } from './assembly';
import { AwsError, CallContext, escapeXml } from './aws-endpoint';
import type { ApiCaller } from './cloudtrail';
import type { RunStart } from './sandbox-host';
import { FilterableAttribute, matchesFilterPolicy } from '../../../lambda/shared/filter-policy';

export interface SqsAttribute { DataType: string; StringValue?: string }

export interface SnsCounters { publishes: number; deliveries: number; filteredOut: number }

export interface SnsDelivery {
  readonly subscription: LocalSubscription;
  readonly messageId: string;
  readonly topicArn: string;
}

export interface SnsServiceOptions {
  readonly topics: LocalTopic[];
  readonly subscriptions: LocalSubscription[];
  /** `runStart`: the publisher's run (sandbox-host.ts RunStart; default: arrival). */
  readonly invokeLambdaAsync: (functionArn: string, event: unknown, runStart?: RunStart) => void;
  readonly sendToQueue: (queueArn: string, body: string, attributes: Record<string, SqsAttribute>, groupId?: string, topicArn?: string) => void;
  readonly onDelivery?: (delivery: SnsDelivery) => void;
  /** Sees each successful Subscribe / Unsubscribe with its parameters as CloudTrail records them. */
  readonly onApiCall?: (call: SnsApiCall) => void;
}

/** A management call, in CloudTrail's terms, with its caller (none: the engine's local credentials). */
export interface SnsApiCall extends ApiCaller {
  readonly eventName: 'Subscribe' | 'Unsubscribe';
  readonly requestParameters: Record<string, unknown>;
  readonly responseElements: Record<string, unknown> | null;
}

export interface SubscribeInput {
  readonly topicArn: string;
  readonly protocol: string;
  readonly endpoint: string;
  readonly attributes?: Record<string, string>;
  /** The subscription's ARN when it is given (a template's subscription); else a new one. */
  readonly arn?: string;
}

export interface PublishInput {
  readonly topicArn: string;
  readonly message: string;
  readonly subject?: string;
  readonly attributes?: Record<string, FilterableAttribute>;
  readonly messageGroupId?: string;
  /** When the run that published it started (sandbox-host.ts RunStart): its Lambda deliveries carry it on. */
  readonly runStart?: RunStart;
}

const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';

/** SNS's limit on one message: the body and every attribute's name, data type and value together (256 KiB). */
export const SNS_MAX_MESSAGE_BYTES = 262_144;

/** What SNS counts against the limit, as AWS does: body plus each attribute's name, type and value. */
export function publishedBytes(input: Pick<PublishInput, 'message' | 'attributes'>): number {
  let bytes = Buffer.byteLength(input.message);
  for (const [name, attribute] of Object.entries(input.attributes ?? {})) {
    const value = attribute.StringValue ?? attribute.Value ?? attribute.BinaryValue ?? '';
    bytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType ?? attribute.Type ?? 'String') + Buffer.byteLength(String(value));
  }
  return bytes;
}

export class SnsService {
  public readonly counters: SnsCounters = { publishes: 0, deliveries: 0, filteredOut: 0 };
  private readonly topics = new Map<string, LocalTopic>();
  private readonly subscriptions: LocalSubscription[];

  constructor(private readonly options: SnsServiceOptions) {
    for (const topic of options.topics) this.topics.set(topic.arn, topic);
    this.subscriptions = [...options.subscriptions];
  }

  /** Adds topics (a further stack deployed into the running engine). */
  public addTopics(topics: LocalTopic[]): void {
    for (const topic of topics) this.topics.set(topic.arn, topic);
  }

  /** Subscribes an endpoint to a topic, as the `Subscribe` API does (`caller`: who CloudTrail names). */
  public subscribe(input: SubscribeInput, caller?: ApiCaller): LocalSubscription {
    if (!this.topics.has(input.topicArn)) throw new AwsError('NotFound', `Topic does not exist: ${input.topicArn}`, 404);
    const attrs = input.attributes ?? {};
    const subscription: LocalSubscription = {
      arn: input.arn ?? `${input.topicArn}:${randomUUID()}`,
      topicArn: input.topicArn,
      protocol: input.protocol,
      endpoint: input.endpoint,
      filterPolicy: attrs.FilterPolicy ? JSON.parse(attrs.FilterPolicy) : undefined,
      filterPolicyScope: (attrs.FilterPolicyScope as LocalSubscription['filterPolicyScope']) ?? 'MessageAttributes',
      rawMessageDelivery: attrs.RawMessageDelivery === 'true',
    };
    this.subscriptions.push(subscription);
    this.options.onApiCall?.({
      ...caller,
      eventName: 'Subscribe',
      requestParameters: {
        topicArn: input.topicArn,
        protocol: input.protocol,
        endpoint: input.endpoint,
        ...(Object.keys(attrs).length ? { attributes: attrs } : {}),
        returnSubscriptionArn: false,
      },
      responseElements: { subscriptionArn: subscription.arn },
    });
    return subscription;
  }

  /** Removes a subscription, as the `Unsubscribe` API does (an unknown one is not an error). */
  public unsubscribe(subscriptionArn: string, caller?: ApiCaller): void {
    const i = this.subscriptions.findIndex((s) => s.arn === subscriptionArn);
    if (i >= 0) this.subscriptions.splice(i, 1);
    this.options.onApiCall?.({ ...caller, eventName: 'Unsubscribe', requestParameters: { subscriptionArn }, responseElements: null });
  }

  /** Publishes one message; returns its id. */
  public publish(input: PublishInput): string {
    if (!this.topics.has(input.topicArn)) throw new AwsError('NotFound', `Topic does not exist: ${input.topicArn}`, 404);
    if (publishedBytes(input) > SNS_MAX_MESSAGE_BYTES) {
      throw new AwsError('InvalidParameter', 'Invalid parameter: Message too long', 400);
    }
    this.counters.publishes++;
    const messageId = randomUUID();
    const timestamp = new Date().toISOString();
    const attributes = Object.fromEntries(Object.entries(input.attributes ?? {}).map(([k, a]) => [k, {
      Type: a.DataType ?? a.Type ?? 'String', Value: a.StringValue ?? a.Value ?? String(a.BinaryValue ?? ''),
    }]));
    for (const subscription of this.subscriptions.filter((s) => s.topicArn === input.topicArn)) {
      const message = { body: input.message, attributes: input.attributes };
      const accepted = matchesFilterPolicy(subscription.filterPolicy, message, subscription.filterPolicyScope);
      if (!accepted) {
        this.counters.filteredOut++;
        continue;
      }
      const envelope = {
        Type: 'Notification',
        MessageId: messageId,
        TopicArn: input.topicArn,
        Subject: input.subject ?? null,
        Message: input.message,
        Timestamp: timestamp,
        SignatureVersion: '1',
        Signature: 'LOCAL',
      };
      if (subscription.protocol === 'lambda') {
        this.options.invokeLambdaAsync(subscription.endpoint, {
          Records: [{
            EventSource: 'aws:sns',
            EventVersion: '1.0',
            EventSubscriptionArn: subscription.arn,
            Sns: { ...envelope, SigningCertUrl: 'LOCAL', UnsubscribeUrl: 'LOCAL', MessageAttributes: attributes },
          }],
        }, input.runStart);
      } else if (subscription.protocol === 'sqs') {
        const body = subscription.rawMessageDelivery
          ? input.message
          : JSON.stringify({ ...envelope, SigningCertURL: 'LOCAL', UnsubscribeURL: 'LOCAL', ...(Object.keys(attributes).length ? { MessageAttributes: attributes } : {}) });
        const sqsAttributes = subscription.rawMessageDelivery
          ? Object.fromEntries(Object.entries(attributes).map(([k, a]) => [k, { DataType: a.Type, StringValue: a.Value }]))
          : {};
        this.options.sendToQueue(subscription.endpoint, body, sqsAttributes, input.messageGroupId, input.topicArn);
      } else {
        continue; // http/email/sms endpoints do not exist locally
      }
      this.counters.deliveries++;
      this.options.onDelivery?.({ subscription, messageId, topicArn: input.topicArn });
    }
    return messageId;
  }

  /** The SNS Query API (the subset handlers and plugin registration use). */
  public async handleQuery(params: URLSearchParams, context: CallContext = {}): Promise<string> {
    const { caller, runStart } = context;
    const action = params.get('Action');
    switch (action) {
      case 'Publish': {
        const topicArn = params.get('TopicArn') ?? params.get('TargetArn') ?? '';
        const id = this.publish({
          topicArn,
          message: params.get('Message') ?? '',
          subject: params.get('Subject') ?? undefined,
          attributes: queryAttributes(params, 'MessageAttributes'),
          messageGroupId: params.get('MessageGroupId') ?? undefined,
          runStart,
        });
        return response('Publish', `<MessageId>${id}</MessageId>`);
      }
      case 'PublishBatch': {
        const topicArn = params.get('TopicArn') ?? '';
        const entries: (PublishInput & { id: string })[] = [];
        for (let i = 1; params.has(`PublishBatchRequestEntries.member.${i}.Id`); i++) {
          const prefix = `PublishBatchRequestEntries.member.${i}`;
          entries.push({
            id: params.get(`${prefix}.Id`)!,
            topicArn,
            message: params.get(`${prefix}.Message`) ?? '',
            subject: params.get(`${prefix}.Subject`) ?? undefined,
            attributes: queryAttributes(params, `${prefix}.MessageAttributes`),
            messageGroupId: params.get(`${prefix}.MessageGroupId`) ?? undefined,
            runStart,
          });
        }
        // AWS: the whole batch, not each entry, must fit in 256 KiB.
        if (entries.reduce((total, entry) => total + publishedBytes(entry), 0) > SNS_MAX_MESSAGE_BYTES) {
          throw new AwsError('BatchRequestTooLong', 'The length of all the messages put together is more than the limit.', 400);
        }
        let members = '';
        for (const { id: entryId, ...entry } of entries) {
          const id = this.publish(entry);
          members += `<member><Id>${escapeXml(entryId)}</Id><MessageId>${id}</MessageId></member>`;
        }
        return response('PublishBatch', `<Successful>${members}</Successful><Failed/>`);
      }
      case 'Subscribe': {
        const subscription = this.subscribe({
          topicArn: params.get('TopicArn') ?? '',
          protocol: params.get('Protocol') ?? 'lambda',
          endpoint: params.get('Endpoint') ?? '',
          attributes: queryMap(params, 'Attributes'),
        }, caller);
        return response('Subscribe', `<SubscriptionArn>${escapeXml(subscription.arn)}</SubscriptionArn>`);
      }
      case 'Unsubscribe': {
        this.unsubscribe(params.get('SubscriptionArn') ?? '', caller);
        return response('Unsubscribe', '');
      }
      case 'ListSubscriptionsByTopic': {
        const topicArn = params.get('TopicArn');
        const members = this.subscriptions.filter((s) => s.topicArn === topicArn).map((s) => '<member>'
          + `<SubscriptionArn>${escapeXml(s.arn)}</SubscriptionArn><TopicArn>${escapeXml(s.topicArn)}</TopicArn>`
          + `<Protocol>${escapeXml(s.protocol)}</Protocol><Endpoint>${escapeXml(s.endpoint)}</Endpoint><Owner>local</Owner></member>`).join('');
        return response('ListSubscriptionsByTopic', `<Subscriptions>${members}</Subscriptions>`);
      }
      case 'GetTopicAttributes': {
        const topicArn = params.get('TopicArn') ?? '';
        if (!this.topics.has(topicArn)) throw new AwsError('NotFound', `Topic does not exist: ${topicArn}`, 404);
        return response('GetTopicAttributes', `<Attributes><entry><key>TopicArn</key><value>${escapeXml(topicArn)}</value></entry></Attributes>`);
      }
      default:
        throw new AwsError('InvalidAction', `The local engine does not emulate SNS ${action}`);
    }
  }
}

function response(action: string, result: string): string {
  return `<${action}Response xmlns="${NS}"><${action}Result>${result}</${action}Result>`
    + `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`;
}

/** `MessageAttributes.entry.N.Name` / `.Value.DataType` / `.Value.StringValue` (Query encoding). */
function queryAttributes(params: URLSearchParams, prefix: string): Record<string, FilterableAttribute> {
  const out: Record<string, FilterableAttribute> = {};
  for (let i = 1; params.has(`${prefix}.entry.${i}.Name`); i++) {
    const p = `${prefix}.entry.${i}`;
    out[params.get(`${p}.Name`)!] = {
      DataType: params.get(`${p}.Value.DataType`) ?? 'String',
      StringValue: params.get(`${p}.Value.StringValue`) ?? undefined,
      BinaryValue: params.get(`${p}.Value.BinaryValue`) ?? undefined,
    };
  }
  return out;
}

/** `Attributes.entry.N.key` / `.value`. */
function queryMap(params: URLSearchParams, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; params.has(`${prefix}.entry.${i}.key`); i++) out[params.get(`${prefix}.entry.${i}.key`)!] = params.get(`${prefix}.entry.${i}.value`) ?? '';
  return out;
}
