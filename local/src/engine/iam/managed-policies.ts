/**
 * The AWS managed policies the templates attach (`ManagedPolicyArns`), as AWS publishes them, so a
 * role's rights locally are its rights on AWS. A managed policy not listed here grants nothing
 * locally; the authorizer logs it once.
 */
const statement = (Action: string[], Resource: string | string[] = '*') => ({ Effect: 'Allow', Action, Resource });
const policy = (...Statement: object[]) => ({ Version: '2012-10-17', Statement });

export const AWS_MANAGED_POLICIES: Record<string, object> = {
  'service-role/AWSLambdaBasicExecutionRole': policy(statement(['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'])),
  'service-role/AWSLambdaVPCAccessExecutionRole': policy(statement([
    'logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'ec2:CreateNetworkInterface',
    'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses',
    'ec2:UnassignPrivateIpAddresses',
  ])),
  'service-role/AWSLambdaDynamoDBExecutionRole': policy(statement([
    'dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams',
    'logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents',
  ])),
  'service-role/AWSLambdaSQSQueueExecutionRole': policy(statement([
    'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents',
  ])),
  'AWSXrayWriteOnlyAccess': policy(statement([
    'xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets', 'xray:GetSamplingStatisticSummaries',
  ])),
  'AdministratorAccess': policy(statement(['*'])),
};

/** The managed policy's document, by ARN (`arn:aws:iam::aws:policy/<name>`), if known. */
export function awsManagedPolicy(arn: string): object | undefined {
  const name = /^arn:aws[a-z-]*:iam::aws:policy\/(.+)$/.exec(arn)?.[1];
  return name ? AWS_MANAGED_POLICIES[name] : undefined;
}
