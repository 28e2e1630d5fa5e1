/**
 * CloudTrail management events for the calls a plugin team makes against the engine (SNS
 * Subscribe/Unsubscribe, Lambda CreateFunction/UpdateFunctionCode/TagResource), put on the default
 * event bus as EventBridge delivers them: `detail-type` "AWS API Call via CloudTrail", `source`
 * `aws.<service>`, and the CloudTrail record as `detail` (userIdentity, eventSource, eventName,
 * requestParameters, responseElements, ...). Lambda's event names carry the API version
 * (`UpdateFunctionCode20150331v2`), as in AWS's records. Only successful calls are recorded here:
 * the rules this project writes ignore failed ones (`errorCode` exists).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { BusEvent } from './events';
import { isoSeconds } from './events';

export const CLOUDTRAIL_DETAIL_TYPE = 'AWS API Call via CloudTrail';

/** Who made a call: CloudTrail's `userIdentity`. */
export interface CallerIdentity {
  readonly type: 'AssumedRole' | 'IAMUser' | 'Root' | 'AWSService';
  readonly principalId: string;
  readonly arn: string;
  readonly accountId: string;
  readonly accessKeyId?: string;
  /** A role session: its role. */
  readonly sessionIssuer?: { readonly arn: string; readonly userName: string; readonly principalId: string };
}

/** The API versions Lambda puts in its CloudTrail event names. */
export const LAMBDA_EVENT_NAMES = {
  CreateFunction: 'CreateFunction20150331',
  UpdateFunctionCode: 'UpdateFunctionCode20150331v2',
  TagResource: 'TagResource20170331v2',
} as const;

export interface ApiCallRecord {
  readonly service: 'sns' | 'lambda';
  readonly eventName: string;
  readonly requestParameters: unknown;
  readonly responseElements: unknown;
  readonly identity?: CallerIdentity;
  /** The service that made the call for the caller (`cloudformation.amazonaws.com` for a deployment). */
  readonly invokedBy?: string;
  readonly resources?: string[];
}

export interface CloudTrailOptions {
  readonly region: string;
  readonly account: string;
  readonly now: () => number;
  /** Where records go: the default bus. */
  readonly put: (event: BusEvent) => void;
}

export class CloudTrail {
  /** Records made, oldest first (tests read them; at most the last 1000 are kept). */
  public readonly records: BusEvent[] = [];

  /** The caller of the calls being made now (see asCaller). */
  private readonly callers = new AsyncLocalStorage<Pick<ApiCallRecord, 'identity' | 'invokedBy'>>();

  constructor(private readonly options: CloudTrailOptions) {}

  /**
   * Records the calls `work` makes (synchronous or not) as made by `caller`: an API request's signer
   * (the endpoint), CloudFormation's calls for the deployer during `engine.deploy()`. Each call
   * chain keeps its own caller (AsyncLocalStorage), so concurrent requests do not mix.
   */
  public asCaller<T>(caller: Pick<ApiCallRecord, 'identity' | 'invokedBy'>, work: () => T): T {
    return this.callers.run(caller, work);
  }

  /** The identity of calls that carry no principal of their own: the engine's local credentials. */
  public defaultIdentity(): CallerIdentity {
    const account = this.options.account;
    return {
      type: 'AssumedRole',
      principalId: 'AROALOCALENGINE:local',
      arn: `arn:aws:sts::${account}:assumed-role/local/local`,
      accountId: account,
      accessKeyId: 'local',
      sessionIssuer: { arn: `arn:aws:iam::${account}:role/local`, userName: 'local', principalId: 'AROALOCALENGINE' },
    };
  }

  /** Records one successful management call and puts its event on the default bus. */
  public record(call: ApiCallRecord): BusEvent {
    const { region, account } = this.options;
    const time = isoSeconds(this.options.now());
    const caller = this.callers.getStore();
    const invokedBy = call.invokedBy ?? caller?.invokedBy;
    const identity = call.identity ?? caller?.identity ?? this.defaultIdentity();
    const eventSource = `${call.service}.amazonaws.com`;
    const event: BusEvent = {
      'version': '0',
      'id': randomUUID(),
      'detail-type': CLOUDTRAIL_DETAIL_TYPE,
      'source': `aws.${call.service}`,
      account,
      time,
      region,
      'resources': call.resources ?? [],
      'detail': {
        eventVersion: '1.09',
        userIdentity: {
          type: identity.type,
          principalId: identity.principalId,
          arn: identity.arn,
          accountId: identity.accountId,
          ...(identity.accessKeyId ? { accessKeyId: identity.accessKeyId } : {}),
          ...(identity.sessionIssuer ? {
            sessionContext: {
              sessionIssuer: { type: 'Role', ...identity.sessionIssuer, accountId: identity.accountId },
              attributes: { creationDate: time, mfaAuthenticated: 'false' },
            },
          } : {}),
          ...(invokedBy ? { invokedBy } : {}),
        },
        eventTime: time,
        eventSource,
        eventName: call.eventName,
        awsRegion: region,
        sourceIPAddress: invokedBy ?? '127.0.0.1',
        userAgent: invokedBy ?? 'cdk-orchestrator-local',
        requestParameters: call.requestParameters,
        responseElements: call.responseElements,
        requestID: randomUUID(),
        eventID: randomUUID(),
        readOnly: false,
        eventType: 'AwsApiCall',
        managementEvent: true,
        recipientAccountId: account,
        eventCategory: 'Management',
      },
    };
    this.records.push(event);
    if (this.records.length > 1000) this.records.shift();
    this.options.put(event);
    return event;
  }
}
