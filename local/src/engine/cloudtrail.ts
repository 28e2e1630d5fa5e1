/**
 * CloudTrail management events for the calls a plugin team makes against the engine (SNS
 * Subscribe/Unsubscribe, Lambda CreateFunction/UpdateFunctionCode/TagResource), put on the default
 * event bus as EventBridge delivers them: `detail-type` "AWS API Call via CloudTrail", `source`
 * `aws.<service>`, and the CloudTrail record as `detail` (userIdentity, eventSource, eventName,
 * requestParameters, responseElements, ...). Lambda's event names carry the API version
 * (`UpdateFunctionCode20150331v2`), as in AWS's records. Only successful calls are recorded here:
 * the rules this project writes ignore failed ones (`errorCode` exists).
 */
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

/**
 * Who made a call: the endpoint names a request's signer, a deployment the deployer and CloudFormation.
 * Passed along with the call, not kept in an AsyncLocalStorage, which turns Node.js's async hooks on
 * for the whole process (docs/DESIGN.md, "Local engine: speed levers measured").
 */
export type ApiCaller = Pick<ApiCallRecord, 'identity' | 'invokedBy'>;

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

  constructor(private readonly options: CloudTrailOptions) {}

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

  /**
   * Records one successful management call and puts its event on the default bus. A call without an
   * identity was made with the engine's local credentials.
   */
  public record(call: ApiCallRecord): BusEvent {
    const { region, account } = this.options;
    const time = isoSeconds(this.options.now());
    const { invokedBy } = call;
    const identity = call.identity ?? this.defaultIdentity();
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
