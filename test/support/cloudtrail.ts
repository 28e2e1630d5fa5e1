/**
 * CloudTrail management events as EventBridge delivers them ("AWS API Call via CloudTrail"), in the
 * shape AWS documents for SNS and Lambda (CloudTrail record contents: userIdentity, eventSource,
 * eventName, requestParameters, responseElements, ...). Lambda's event names carry the API version
 * (`UpdateFunctionCode20150331v2`); `Unsubscribe` has no response elements.
 */
import { randomUUID } from 'node:crypto';

const ACCOUNT = '123456789012';

export interface CloudTrailOptions {
  readonly region?: string;
  readonly account?: string;
  /** A failed call: CloudTrail records `errorCode` and `errorMessage` and no response. */
  readonly errorCode?: string;
}

function envelope(
  source: string, eventSource: string, eventName: string, requestParameters: unknown, responseElements: unknown, options: CloudTrailOptions = {},
) {
  const region = options.region ?? 'us-east-1';
  const account = options.account ?? ACCOUNT;
  const time = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    'version': '0',
    'id': randomUUID(),
    'detail-type': 'AWS API Call via CloudTrail',
    source,
    account,
    time,
    region,
    'resources': [],
    'detail': {
      eventVersion: '1.09',
      userIdentity: {
        type: 'AssumedRole',
        principalId: 'AROAEXAMPLEROLEID:alice',
        arn: `arn:aws:sts::${account}:assumed-role/PluginDeployer/alice`,
        accountId: account,
        accessKeyId: 'ASIAEXAMPLEKEYID',
        sessionContext: {
          sessionIssuer: { type: 'Role', principalId: 'AROAEXAMPLEROLEID', arn: `arn:aws:iam::${account}:role/PluginDeployer`, accountId: account, userName: 'PluginDeployer' },
          attributes: { creationDate: time, mfaAuthenticated: 'false' },
        },
      },
      eventTime: time,
      eventSource,
      eventName,
      awsRegion: region,
      sourceIPAddress: '198.51.100.7',
      userAgent: 'aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8 cfg/retry-mode#standard',
      ...(options.errorCode ? { errorCode: options.errorCode, errorMessage: `${options.errorCode}: the call failed` } : {}),
      requestParameters,
      responseElements: options.errorCode ? null : responseElements,
      requestID: randomUUID(),
      eventID: randomUUID(),
      readOnly: false,
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: account,
      eventCategory: 'Management',
      tlsDetails: { tlsVersion: 'TLSv1.3', cipherSuite: 'TLS_AES_128_GCM_SHA256', clientProvidedHostHeader: `${eventSource.split('.')[0]}.${region}.amazonaws.com` },
    },
  };
}

/** `sns:Subscribe` of a Lambda function (optionally with a filter policy). */
export function subscribeEvent(
  props: { topicArn: string; functionArn: string; subscriptionArn: string; protocol?: string; filterPolicy?: unknown },
  options?: CloudTrailOptions,
) {
  const attributes = props.filterPolicy ? { FilterPolicy: JSON.stringify(props.filterPolicy) } : undefined;
  return envelope('aws.sns', 'sns.amazonaws.com', 'Subscribe', {
    topicArn: props.topicArn,
    protocol: props.protocol ?? 'lambda',
    endpoint: props.functionArn,
    ...(attributes ? { attributes } : {}),
    returnSubscriptionArn: false,
  }, { subscriptionArn: props.subscriptionArn }, options);
}

/** `sns:Unsubscribe` (no response elements). */
export function unsubscribeEvent(subscriptionArn: string, options?: CloudTrailOptions) {
  return envelope('aws.sns', 'sns.amazonaws.com', 'Unsubscribe', { subscriptionArn }, null, options);
}

/** `lambda:UpdateFunctionCode` as CloudTrail names it (`UpdateFunctionCode20150331v2`). */
export function updateFunctionCodeEvent(functionArn: string, options?: CloudTrailOptions & { requestName?: string }) {
  const functionName = functionArn.split(':function:')[1].split(':')[0];
  const account = functionArn.split(':')[4];
  return envelope('aws.lambda', 'lambda.amazonaws.com', 'UpdateFunctionCode20150331v2', {
    functionName: options?.requestName ?? functionName,
    publish: false,
    dryRun: false,
  }, {
    functionName,
    functionArn,
    runtime: 'nodejs22.x',
    role: `arn:aws:iam::${account}:role/${functionName}-role`,
    handler: 'index.handler',
    codeSize: 2048,
    description: '',
    timeout: 30,
    memorySize: 256,
    lastModified: new Date().toISOString().replace('Z', '+0000'),
    codeSha256: 'bm90IGEgcmVhbCBoYXNo',
    version: '$LATEST',
    tracingConfig: { mode: 'PassThrough' },
    revisionId: randomUUID(),
    state: 'Active',
    lastUpdateStatus: 'InProgress',
    lastUpdateStatusReason: 'The function is being created.',
    lastUpdateStatusReasonCode: 'Creating',
    packageType: 'Zip',
    architectures: ['arm64'],
  }, options);
}
