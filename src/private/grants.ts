// Least-privilege grant helpers: every statement is scoped to the resource it is about.
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import {
  ACTIVITY_START_WILDCARD, acknowledgeWildcards, LOG_DELIVERY_WILDCARD, NESTED_EXECUTION_WILDCARD, XRAY_WILDCARD,
} from './nag';

/** KMS actions a principal needs to read a table encrypted with a customer managed key (as aws-cdk-lib's table grants). */
export const KMS_TABLE_READ_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey'];
/** ...and to write it. */
export const KMS_TABLE_WRITE_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'];
/** KMS actions a publisher needs on the key of an encrypted SNS topic. */
export const KMS_TOPIC_PUBLISH_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey*'];

/**
 * Grants exactly `actions` on the table itself (never its indexes or `*`), plus the KMS actions for
 * the table's customer managed key when it has one.
 */
export function grantTable(grantee: iam.IGrantable, table: dynamodb.ITable, actions: string[], write: boolean): iam.Grant {
  const grant = iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [table.tableArn] });
  if (!table.encryptionKey) {
    return grant;
  }
  return grant.combine(grantKey(grantee, table.encryptionKey, write ? KMS_TABLE_WRITE_ACTIONS : KMS_TABLE_READ_ACTIONS));
}

/** Grants `actions` on one key, on the principal's side (the key policy is left alone). */
export function grantKey(grantee: iam.IGrantable, key: kms.IKey, actions: string[]): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [key.keyArn] });
}

/** What every state machine role needs for logging (CloudWatch Logs vended delivery) and X-Ray. */
export function addStateMachineLoggingAndTracing(role: iam.IRole): void {
  // cdk-nag: these wildcards are required, and so are a workflow's `execution:<activity>:*` (startExecution.sync)
  // and, for many activities, `stateMachine:<orchestratorName>-*`.
  acknowledgeWildcards(role, [LOG_DELIVERY_WILDCARD, XRAY_WILDCARD, NESTED_EXECUTION_WILDCARD, ACTIVITY_START_WILDCARD]);
  // AWS requires `*` for both: log deliveries and X-Ray segments support no resource-level permissions.
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'LogDelivery',
    actions: [
      'logs:CreateLogDelivery',
      'logs:GetLogDelivery',
      'logs:UpdateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:DescribeResourcePolicies',
      'logs:DescribeLogGroups',
    ],
    resources: ['*'],
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'XRay',
    actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
    resources: ['*'],
  }));
}
