/**
 * Failure injection for the DynamoDB traffic of functions: the engine's endpoint forwards every
 * DynamoDB request of handler and plugin code to DynamoDB Local, and a rule here can answer the
 * first N matching requests with a real DynamoDB error response instead (e.g.
 * `ProvisionedThroughputExceededException`), as AWS does under throttling. Nothing is mocked: the
 * SDK in the function sees the same HTTP status and error body it would get from AWS, and applies
 * its own retry policy; requests after the N-th go to DynamoDB Local unchanged.
 *
 * The engine's own reads (status documents, streams) do not pass through the endpoint and are never affected.
 * `Custom::AWS` DynamoDB calls and Step Functions' DynamoDB tasks do, and retry as the SDK's client
 * did (4 attempts: aws-sdk-call.ts), so a rule of 3 or fewer throttled answers does not fail them.
 */
import { AwsError } from './aws-endpoint';

/** A DynamoDB request as the function's SDK sent it (AWS JSON protocol). */
export interface DynamoDbRequest {
  /** `GetItem`, `UpdateItem`, `GetRecords`, ... (the `X-Amz-Target` operation). */
  readonly operation: string;
  /** The request body: `TableName`, `Key`, `UpdateExpression`, ... */
  readonly body: Record<string, any>;
}

/** The error codes AWS answers a throttled or failed DynamoDB request with, and their HTTP status. */
export const DYNAMODB_ERROR_STATUS: Record<string, number> = {
  ProvisionedThroughputExceededException: 400,
  ThrottlingException: 400,
  RequestLimitExceeded: 400,
  InternalServerError: 500,
  ServiceUnavailable: 503,
};

export interface DynamoDbFaultRule {
  /** The error code to answer with: one of `DYNAMODB_ERROR_STATUS`. */
  readonly error: string;
  /** How many matching requests fail; later ones pass. */
  readonly times: number;
  /** Only this operation. @default - any */
  readonly operation?: string;
  /** Only requests to this table (`TableName`, or the table of a stream ARN). @default - any */
  readonly tableName?: string;
  /** Only requests this predicate accepts (e.g. an UpdateExpression that removes the task token). @default - any */
  readonly match?: (request: DynamoDbRequest) => boolean;
}

/** A rule once armed: how many requests it failed so far, and the requests it failed. */
export class DynamoDbFault {
  public injected = 0;
  public readonly failedRequests: DynamoDbRequest[] = [];

  constructor(public readonly rule: DynamoDbFaultRule) {
    if (!(rule.error in DYNAMODB_ERROR_STATUS)) {
      throw new Error(`Unknown DynamoDB error "${rule.error}"; inject one of ${Object.keys(DYNAMODB_ERROR_STATUS).join(', ')}`);
    }
    if (!Number.isInteger(rule.times) || rule.times < 1) throw new Error(`times must be a whole number >= 1, got ${rule.times}`);
  }

  /** True once it failed `times` requests. */
  public get exhausted(): boolean {
    return this.injected >= this.rule.times;
  }

  public matches(request: DynamoDbRequest): boolean {
    const { operation, tableName, match } = this.rule;
    if (operation !== undefined && operation !== request.operation) return false;
    if (tableName !== undefined && tableName !== request.body.TableName && !String(request.body.StreamArn ?? '').includes(`/${tableName}/`)) return false;
    return match ? match(request) : true;
  }
}

/** The armed rules, checked in the order they were added; the first live match answers. */
export class DynamoDbFaultInjector {
  private readonly faults: DynamoDbFault[] = [];

  /** True while some rule can still fail a request (the endpoint only buffers requests then). */
  public get armed(): boolean {
    return this.faults.some((fault) => !fault.exhausted);
  }

  public add(rule: DynamoDbFaultRule): DynamoDbFault {
    const fault = new DynamoDbFault(rule);
    this.faults.push(fault);
    return fault;
  }

  /** Disarms every rule. */
  public clear(): void {
    this.faults.length = 0;
  }

  /** The error to answer `request` with, or undefined to forward it. */
  public errorFor(request: DynamoDbRequest): AwsError | undefined {
    const fault = this.faults.find((f) => !f.exhausted && f.matches(request));
    if (!fault) return undefined;
    fault.injected++;
    fault.failedRequests.push(request);
    const message = fault.rule.error === 'ProvisionedThroughputExceededException'
      ? 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API. (injected by the local engine)'
      : `${fault.rule.error} (injected by the local engine)`;
    return new AwsError(fault.rule.error, message, DYNAMODB_ERROR_STATUS[fault.rule.error]);
  }
}
