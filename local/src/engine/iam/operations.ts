/**
 * What each call the endpoint receives asks IAM for: the action(s) and resource ARN(s) of an API
 * operation (DynamoDB tables and indexes, SQS queues, SNS topics, Step Functions state machines and
 * executions, SSM parameters, Lambda functions, event buses), plus the implied KMS calls a service
 * makes for the caller on a resource encrypted with a customer managed key (`kms:ViaService`).
 */
import type { AuthorizationRequest, DenyingService } from './authorizer';
import type { PolicyStore } from './policies';
import type { Principal } from './principals';

export interface EndpointCall {
  readonly accessKeyId?: string;
  /** `DynamoDB_20120810`, `DynamoDBStreams_20120810`, `AmazonSQS`, `AWSStepFunctions`, `AmazonSSM`, `AWSEvents`, `sns` or `lambda`. */
  readonly service: string;
  readonly operation: string;
  /** The JSON body, or the SNS query parameters as an object, or `{ FunctionName, Qualifier }`. */
  readonly body: Record<string, any>;
}

export interface RequiredPermission extends AuthorizationRequest {
  readonly service: Exclude<DenyingService, 'delivery'>;
}

export interface OperationContext {
  readonly account: string;
  readonly region: string;
  readonly store: PolicyStore;
  readonly queueArnOf: (url: string) => string;
  /** The state machine whose task issued a token (`states:SendTask*` is authorized on it). */
  readonly stateMachineOfToken: (token: string) => string | undefined;
}

const DYNAMODB_READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const DYNAMODB_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
const TRANSACT_ACTIONS: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };
/** Batch operations are authorized as their single-entry action. */
const SQS_ACTIONS: Record<string, string> = { SendMessageBatch: 'SendMessage', DeleteMessageBatch: 'DeleteMessage', ChangeMessageVisibilityBatch: 'ChangeMessageVisibility' };

/** The permissions one endpoint call needs, in the order AWS checks them. */
export function permissionsFor(call: EndpointCall, principal: Principal, ctx: OperationContext): RequiredPermission[] {
  const { account, region } = ctx;
  const need = (service: RequiredPermission['service'], action: string, resource: string, context?: Record<string, string>): RequiredPermission =>
    ({ principal, action, resource, service, context });
  const viaKms = (service: RequiredPermission['service'], resourceArn: string, kmsAction: string, via: string) => {
    const key = ctx.store.keyOf.get(resourceArn);
    return key ? [need(service, kmsAction, key, { 'kms:ViaService': `${via}.${region}.amazonaws.com`, 'kms:CallerAccount': account })] : [];
  };
  const { operation, body } = call;
  switch (call.service) {
    case 'DynamoDB_20120810': {
      const table = (name: string) => (String(name).startsWith('arn:') ? String(name) : `arn:aws:dynamodb:${region}:${account}:table/${name}`);
      const items: [string, string][] = [];
      if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
        for (const name of Object.keys(body.RequestItems ?? {})) items.push([operation, table(name)]);
      } else if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
        for (const item of body.TransactItems ?? []) {
          const [kind, detail] = Object.entries(item)[0] as [string, any];
          items.push([TRANSACT_ACTIONS[kind] ?? kind, table(detail.TableName)]);
        }
      } else if (body.TableName) {
        items.push([operation, table(body.TableName) + (body.IndexName ? `/index/${body.IndexName}` : '')]);
      } else {
        items.push([operation, '*']);
      }
      const out = items.map(([action, resource]) => need('dynamodb', `dynamodb:${action}`, resource));
      if (DYNAMODB_READS.has(operation) || DYNAMODB_WRITES.has(operation)) {
        const tables = [...new Set(items.map(([, resource]) => resource.split('/index/')[0]))];
        for (const t of tables) out.push(...viaKms('dynamodb', t, 'kms:Decrypt', 'dynamodb'));
      }
      return out;
    }
    case 'DynamoDBStreams_20120810':
      // Stream ARNs reach handlers only through event source mappings (authorized on delivery).
      return body.StreamArn ? [need('dynamodb', `dynamodb:${operation}`, String(body.StreamArn))] : [];
    case 'AmazonSQS': {
      const queue = body.QueueUrl ? ctx.queueArnOf(String(body.QueueUrl)) : `arn:aws:sqs:${region}:${account}:${body.QueueName ?? '*'}`;
      const action = SQS_ACTIONS[operation] ?? operation;
      const out = [need('sqs', `sqs:${action}`, queue)];
      if (action === 'SendMessage') out.push(...viaKms('sqs', queue, 'kms:GenerateDataKey', 'sqs'));
      if (action === 'ReceiveMessage') out.push(...viaKms('sqs', queue, 'kms:Decrypt', 'sqs'));
      return out;
    }
    case 'sns': {
      const topic = String(body.TopicArn ?? body.TargetArn ?? (body.SubscriptionArn ? String(body.SubscriptionArn).split(':').slice(0, 6).join(':') : '*'));
      const action = operation === 'PublishBatch' ? 'Publish' : operation;
      const out = [need('sns', `SNS:${action}`, topic)];
      if (action === 'Publish') out.push(...viaKms('sns', topic, 'kms:GenerateDataKey', 'sns'));
      return out;
    }
    case 'AWSStepFunctions': {
      if (/^SendTask(Success|Failure|Heartbeat)$/.test(operation)) {
        const machine = ctx.stateMachineOfToken(String(body.taskToken));
        return machine ? [need('states', `states:${operation}`, machine)] : [];
      }
      const resource = body.stateMachineArn ?? body.executionArn ?? '*';
      return [need('states', `states:${operation}`, String(resource))];
    }
    case 'AmazonSSM': {
      const names: string[] = operation === 'GetParameters' ? body.Names ?? [] : body.Name ? [body.Name] : [];
      const arn = (name: string) => (name.startsWith('arn:') ? name : `arn:aws:ssm:${region}:${account}:parameter/${name.replace(/^\//, '')}`);
      return names.map((name) => need('ssm', `ssm:${operation}`, arn(name)));
    }
    case 'AWSEvents': {
      const bus = (name?: string) => (name?.startsWith('arn:') ? name : `arn:aws:events:${region}:${account}:event-bus/${name ?? 'default'}`);
      if (operation === 'PutEvents') {
        return [...new Set<string>((body.Entries ?? []).map((e: any) => bus(e.EventBusName)))].map((b) => need('events', 'events:PutEvents', b));
      }
      return [need('events', `events:${operation}`, body.EventBusName ? bus(body.EventBusName) : '*')];
    }
    case 'lambda': {
      const name = String(body.FunctionName);
      const arn = name.startsWith('arn:') ? name : `arn:aws:lambda:${region}:${account}:function:${name}`;
      if (operation === 'Invoke') return [need('lambda', 'lambda:InvokeFunction', body.Qualifier ? `${arn}:${body.Qualifier}` : arn)];
      // Control-plane calls (lambda-api.ts); creating a function passes its execution role.
      const out = [need('lambda', `lambda:${operation}`, arn)];
      if (operation === 'CreateFunction' && body.Role) out.push(need('lambda', 'iam:PassRole', String(body.Role), { 'iam:PassedToService': 'lambda.amazonaws.com' }));
      return out;
    }
    default:
      return [];
  }
}
