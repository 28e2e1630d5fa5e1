// cdk-nag acknowledgements of what the library creates (DESIGN.md "cdk-nag"). Every finding of
// cdk-nag's AwsSolutions pack on a resource the library makes is either fixed or acknowledged here,
// where the resource is made, with the reason: a user running cdk-nag on an app that uses the
// library has nothing of ours to acknowledge. Not part of the public API.
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';

/**
 * Records that cdk-nag rule (or finding) `id` is acceptable on `scope` and everything under it.
 *
 * `Validations.acknowledge` refuses ids with more than one `::` (aws-cdk-lib before
 * aws/aws-cdk#38787, e.g. `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:...]`, see
 * cdklabs/cdk-nag#2351); those are written to the same metadata entry it writes
 * (`Validations.ACKNOWLEDGED_RULES_METADATA_KEY`, which cdk-nag reads), unchanged.
 */
export function acknowledgeRule(scope: IConstruct, id: string, reason: string): void {
  if (id.split('::').length <= 2) {
    Validations.of(scope).acknowledge({ id, reason });
  } else {
    scope.node.addMetadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY, { [id]: reason });
  }
}

/**
 * A kind of IAM statement the library writes although it has a wildcard (cdk-nag AwsSolutions-IAM5),
 * and why. A statement is of this kind when every one of its actions is listed in `actions`.
 * The justifications below (and in runtime-registration.ts) are data of this one shape: they repeat
 * the shape, not logic, so each reads on its own where the grant is explained.
 */
export interface WildcardJustification {
  readonly actions: readonly string[];
  /** Which of the statement's wildcards are justified: in its actions or in its resources. */
  readonly wildcardIn: 'Action' | 'Resource';
  readonly reason: string;
}

/** X-Ray: active tracing of the handlers and the state machines. */
export const XRAY_WILDCARD: WildcardJustification = {
  actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
  wildcardIn: 'Resource',
  reason: 'X-Ray active tracing: PutTraceSegments, PutTelemetryRecords and the sampling calls support no resource-level permissions (AWS requires "*")',
};

/** CloudWatch Logs vended delivery of the state machines' logs. */
export const LOG_DELIVERY_WILDCARD: WildcardJustification = {
  actions: [
    'logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery',
    'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups',
  ],
  wildcardIn: 'Resource',
  reason: 'Step Functions logging to CloudWatch Logs: the log-delivery actions support no resource-level permissions (AWS requires "*")',
};

/** The status-summary stream mapping (aws-cdk-lib's DynamoEventSource). */
export const STREAM_LIST_WILDCARD: WildcardJustification = {
  actions: ['dynamodb:ListStreams'],
  wildcardIn: 'Resource',
  reason: 'The DynamoDB stream event source of status-summary: dynamodb:ListStreams supports no resource-level permissions; '
    + 'the stream itself is read with DescribeStream/GetRecords/GetShardIterator on the status table\'s stream ARN only',
};

/** Task-token callbacks of the shared handlers, on the orchestrator's state machines by name. */
export const TASK_TOKEN_WILDCARD: WildcardJustification = {
  actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
  wildcardIn: 'Resource',
  reason: 'Task-token callbacks authorize against the state machine: granted on "stateMachine:<orchestratorName>-*", the orchestrator\'s '
    + 'own activity state machines by name, so the shared handler policies stay the same size however many activities there are',
};

/** A workflow following the executions of its activities (states:startExecution.sync). */
export const NESTED_EXECUTION_WILDCARD: WildcardJustification = {
  actions: ['states:DescribeExecution', 'states:StopExecution'],
  wildcardIn: 'Resource',
  reason: 'startExecution.sync follows and stops the nested activity executions, whose ARNs are only known at run time: '
    + '"execution:<activity state machine>:*", one pattern per activity of the workflow',
};

/** A workflow of more than a few activities starting them by the orchestrator's name pattern. */
export const ACTIVITY_START_WILDCARD: WildcardJustification = {
  actions: ['states:StartExecution'],
  wildcardIn: 'Resource',
  reason: 'A workflow with many activities starts them through "stateMachine:<orchestratorName>-*", the orchestrator\'s own activity '
    + 'state machines by name: one ARN per activity would outgrow IAM\'s inline policy size limit for the workflow role',
};

/** Customer managed key grants (tables, topics, the dead-letter queue). */
export const KMS_ACTIONS_WILDCARD: WildcardJustification = {
  // grants.ts's table and topic key actions, and aws-cdk-lib's queue key grant.
  actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
  wildcardIn: 'Action',
  reason: 'Encryption with the orchestrator\'s customer managed key, on that one key ARN only: "kms:GenerateDataKey*" and '
    + '"kms:ReEncrypt*" are the data-key and re-encryption actions DynamoDB, SQS and SNS use (aws-cdk-lib\'s key grants)',
};

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 (wildcard) findings of the IAM policies under `scope`
 * that come from statements of the justified kinds — and only those: a wildcard in any other
 * statement is still reported.
 *
 * A finding names the resource as the template renders it (logical ids, cross-stack imports,
 * nested-stack parameters), which is only settled once the app is prepared. So the findings are
 * worked out in a validation hook: `synth()` runs those after `prepare` and before validation
 * plugins such as cdk-nag's packs. (Running a pack with `validateScope` on a tree that was never
 * synthesized misses these acknowledgements: synthesize first.)
 */
export function acknowledgeWildcards(scope: IConstruct, justifications: readonly WildcardJustification[]): void {
  const known = wildcardJustifications.get(scope);
  if (known) {
    known.push(...justifications);
    return;
  }
  const all = [...justifications];
  wildcardJustifications.set(scope, all);
  scope.node.addValidation({
    validate: () => {
      for (const policy of scope.node.findAll()) {
        if (policy instanceof iam.CfnPolicy && !acknowledgedPolicies.has(policy)) {
          acknowledgedPolicies.add(policy);
          acknowledgePolicy(policy, all);
        }
      }
      return [];
    },
  });
}

/** Per scope, every kind justified so far (one validation hook per scope sees them all). */
const wildcardJustifications = new WeakMap<IConstruct, WildcardJustification[]>();
const acknowledgedPolicies = new WeakSet<iam.CfnPolicy>();

interface Statement {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly Resource?: unknown;
}

function acknowledgePolicy(policy: iam.CfnPolicy, justifications: readonly WildcardJustification[]): void {
  const document = Stack.of(policy).resolve(policy.policyDocument) as { Statement?: Statement[] };
  const justified = new Map<string, string>();
  const unjustified = new Set<string>();
  for (const statement of document.Statement ?? []) {
    if (statement.Effect !== 'Allow') continue;
    const actions = asArray(statement.Action).map(String);
    const findings = {
      Action: actions.filter((action) => action.includes('*')).map((action) => `Action::${action}`),
      Resource: asArray(statement.Resource).map(flattenReference).filter((resource) => resource.includes('*')).map((resource) => `Resource::${resource}`),
    };
    const kind = justifications.find((j) => actions.length > 0 && actions.every((action) => j.actions.includes(action)));
    for (const wildcardIn of ['Action', 'Resource'] as const) {
      for (const finding of findings[wildcardIn]) {
        if (kind?.wildcardIn === wildcardIn) justified.set(finding, kind.reason);
        else unjustified.add(finding);
      }
    }
  }
  for (const [finding, reason] of justified) {
    // One finding per policy: when another statement has the same wildcard, it stays reported.
    if (!unjustified.has(finding)) acknowledgeRule(policy, `AwsSolutions-IAM5[${finding}]`, reason);
  }
}

function asArray(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * A resource as cdk-nag names it in a finding: `Fn::Join` joined, `Ref` as `<Name>`, `Fn::GetAtt`
 * as `<Logical.Attribute>`, `Fn::Sub`'s `${...}` as `<...>`, an import by its export name.
 */
function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const node = value as Record<string, any>;
  if (node['Fn::Join']) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(flattenReference).join(delimiter);
  }
  if (node['Fn::Sub']) return flattenReference(node['Fn::Sub']);
  if (node['Fn::GetAtt']) {
    const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
  }
  if (node['Fn::ImportValue']) return flattenReference(node['Fn::ImportValue']);
  if (node.Ref) return `<${flattenReference(node.Ref)}>`;
  return JSON.stringify(node);
}
