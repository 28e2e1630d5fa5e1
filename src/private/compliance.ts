// Compliance placement (docs/COMPLIANCE.md): where the functions the library creates run (the
// user's VPC), which tables go into the user's backup plan, and the dead-letter queue of every
// asynchronously invoked function and EventBridge target. The Orchestrator registers its settings
// here once; each place that creates a function, provider, log group or target asks for them with
// one call. Not part of the public API.
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeRule, acknowledgeWildcards, WildcardJustification } from './nag';
import { DLQ_RETENTION } from '../defaults';

/** What an Orchestrator's functions, queues and log groups are placed with. */
export interface ComplianceSettings {
  readonly orchestratorName: string;
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
  readonly encryptionKey?: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/** The network props of the Orchestrator (validated by `validateNetwork`). */
export interface NetworkProps {
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
}

/** Lambda's network interfaces in a VPC (AWS's AWSLambdaVPCAccessExecutionRole, written inline). */
export const VPC_ENI_WILDCARD: WildcardJustification = {
  actions: [
    'ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface',
    'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses',
  ],
  wildcardIn: 'Resource',
  reason: 'A function in a VPC: Lambda manages its network interfaces with the execution role; the Describe actions support no '
    + 'resource-level permissions and the interfaces\' ids are only known at run time (the statements of AWS\'s AWSLambdaVPCAccessExecutionRole)',
};

/**
 * Why a handler needs no dead-letter queue of its own: it is never invoked asynchronously (cdk-nag
 * LambdaDLQ cannot tell how a function is invoked).
 */
export const SYNCHRONOUS_HANDLERS: Record<string, string> = {
  StartRun: 'start-run is invoked synchronously only (a Workflow\'s first Task state, RequestResponse): the state machine sees and retries every failure, so a dead-letter queue would never receive anything',
  SequentialStage: 'sequential-stage is invoked synchronously only (the activity state machine\'s Task state, RequestResponse): Step Functions retries and catches its failures; a dead-letter queue would never receive anything',
  ParallelStage: 'parallel-stage is invoked synchronously only (the activity state machine\'s Task state with a task token, RequestResponse): Step Functions retries and catches its failures; a dead-letter queue would never receive anything',
  StageFailure: 'stage-failure is invoked synchronously only (the activity state machine\'s Catch path, RequestResponse): the state machine fails with its error; a dead-letter queue would never receive anything',
  StatusSummary: 'status-summary is invoked only by its DynamoDB stream event source mapping (synchronously): records it fails on go to the mapping\'s on-failure destination, the StatusSummaryDeadLetterQueue',
};

/** Reserved concurrency is not set on any function the library creates (cdk-nag LambdaConcurrency). */
export const RESERVED_CONCURRENCY_REASON = 'No reserved concurrency: a cap would throttle runs (a throttled Task state or stream batch is retried, '
  + 'delaying every run of the orchestrator), and reserving would take capacity from the account\'s other functions; concurrency is watched '
  + 'by the handler error alarms instead';

/** Inline policies of the library's roles (cdk-nag IAMNoInlinePolicy). */
export const INLINE_POLICY_REASON = 'An inline policy written for this one role (aws-cdk-lib grants): every statement is scoped to the orchestrator\'s '
  + 'own resources, it cannot be attached to any other principal, and it is created and deleted with its role';

const settingsOf = new WeakMap<IConstruct, ComplianceSettings>();
const handlersSecurityGroups = new WeakMap<IConstruct, ec2.ISecurityGroup[]>();
const failedEventQueues = new WeakMap<IConstruct, sqs.IQueue>();

/** A named synth error when vpcSubnets or securityGroups are given without vpc. */
export function validateNetwork(where: string, props: NetworkProps): void {
  if (!props.vpc && (props.vpcSubnets || props.securityGroups)) {
    const given = [props.vpcSubnets ? 'vpcSubnets' : undefined, props.securityGroups ? 'securityGroups' : undefined].filter(Boolean).join(' and ');
    throw new Error(`${where}: ${given} ${props.vpcSubnets && props.securityGroups ? 'are' : 'is'} set but vpc is not: `
      + 'pass the vpc the orchestrator\'s functions run in, or drop ' + given);
  }
  if (props.securityGroups && props.securityGroups.length === 0) {
    throw new Error(`${where}: securityGroups is empty: give at least one security group, or leave it out for one the orchestrator creates`);
  }
}

/** Records the settings of `orchestrator` for everything created under it (or for its activities' plugins). */
export function registerCompliance(orchestrator: IConstruct, settings: ComplianceSettings): void {
  settingsOf.set(orchestrator, settings);
}

/** The settings of the orchestrator `scope` is part of, if any. */
export function complianceOf(scope: IConstruct): ComplianceSettings | undefined {
  for (const construct of [...scope.node.scopes].reverse()) {
    const settings = settingsOf.get(construct);
    if (settings) return settings;
  }
  return undefined;
}

/**
 * Props of a handler function created under an orchestrator: its VPC placement (and the network
 * interface permissions of its `role`) and, when it is invoked asynchronously, its dead-letter
 * queue. Acknowledges what the packs ask for and the library leaves out, with the reason.
 */
export function handlerPlacement(scope: IConstruct, constructId: string, role: iam.IRole): Partial<lambda.FunctionProps> {
  const settings = complianceOf(scope);
  const props: { -readonly [K in keyof lambda.FunctionProps]?: lambda.FunctionProps[K] } = {};
  if (settings?.vpc) {
    Object.assign(props, vpcPlacement(scope, settings, role));
  }
  const sync = SYNCHRONOUS_HANDLERS[constructId];
  if (!sync && settings) {
    props.deadLetterQueue = failedEventsQueue(scope);
  }
  // Applied once the function exists: it is `scope`'s child `constructId`.
  scope.node.addValidation({
    validate: () => {
      const fn = scope.node.tryFindChild(constructId);
      if (fn && !acknowledgedFunctions.has(fn)) {
        acknowledgedFunctions.add(fn);
        acknowledgeFunction(fn, sync);
      }
      return [];
    },
  });
  return props;
}

const acknowledgedFunctions = new WeakSet<IConstruct>();

/** The packs' findings on a handler function the library cannot or should not fix. */
export function acknowledgeFunction(fn: IConstruct, synchronous: string | undefined): void {
  for (const pack of ['NIST.800.53.R5', 'HIPAA.Security']) {
    acknowledgeRule(fn, `${pack}-LambdaConcurrency`, RESERVED_CONCURRENCY_REASON);
    if (synchronous) acknowledgeRule(fn, `${pack}-LambdaDLQ`, synchronous);
  }
  if (synchronous) acknowledgeRule(fn, 'Serverless-LambdaDLQ', synchronous);
}

/**
 * Acknowledges the inline-policy rules of NIST 800-53 R5, HIPAA Security and PCI DSS 3.2.1 on every
 * IAM policy under `scope` (the library's roles' default policies), once they all exist.
 */
export function acknowledgeInlinePolicies(scope: IConstruct): void {
  scope.node.addValidation({
    validate: () => {
      for (const policy of scope.node.findAll()) {
        if (policy instanceof iam.CfnPolicy && !acknowledgedPolicies.has(policy)) {
          acknowledgedPolicies.add(policy);
          for (const pack of ['NIST.800.53.R5', 'HIPAA.Security', 'PCI.DSS.321']) {
            acknowledgeRule(policy, `${pack}-IAMNoInlinePolicy`, INLINE_POLICY_REASON);
          }
        }
      }
      return [];
    },
  });
}

const acknowledgedPolicies = new WeakSet<IConstruct>();

/** VPC props of a function of the orchestrator `settings` describe; the role may manage its network interfaces. */
function vpcPlacement(scope: IConstruct, settings: ComplianceSettings, role: iam.IRole): Partial<lambda.FunctionProps> {
  grantNetworkInterfaces(role);
  return {
    vpc: settings.vpc,
    vpcSubnets: settings.vpcSubnets,
    securityGroups: settings.securityGroups ?? handlersSecurityGroup(scope, settings),
  };
}

/** What a function in a VPC needs on its role: the network-interface actions (AWS requires `*`, acknowledged). */
export function grantNetworkInterfaces(role: iam.IRole): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...VPC_ENI_WILDCARD.actions], resources: ['*'] }));
  acknowledgeWildcards(role, [VPC_ENI_WILDCARD]);
}

/** One security group for every function of an orchestrator (outbound only: the functions call AWS APIs). */
function handlersSecurityGroup(scope: IConstruct, settings: ComplianceSettings): ec2.ISecurityGroup[] {
  const owner = ownerOf(scope);
  let groups = handlersSecurityGroups.get(owner);
  if (!groups) {
    groups = [new ec2.SecurityGroup(owner as Construct, 'HandlersSecurityGroup', {
      vpc: settings.vpc!,
      description: `Functions of orchestrator ${settings.orchestratorName} (outbound HTTPS to AWS APIs only)`,
      allowAllOutbound: false,
    })];
    groups[0].addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS service endpoints');
    handlersSecurityGroups.set(owner, groups);
  }
  return groups;
}

/** The orchestrator construct `scope` belongs to. */
function ownerOf(scope: IConstruct): IConstruct {
  return [...scope.node.scopes].reverse().find((construct) => settingsOf.has(construct)) ?? scope;
}

/**
 * The orchestrator's queue for events its asynchronously invoked functions and its EventBridge
 * targets failed on (Lambda dead-letter config, EventBridge target DLQ): created on first use.
 */
export function failedEventsQueue(scope: IConstruct): sqs.IQueue | undefined {
  const settings = complianceOf(scope);
  if (!settings) return undefined;
  const owner = ownerOf(scope);
  let queue = failedEventQueues.get(owner);
  if (!queue) {
    const key = settings.encryptionKey;
    queue = new sqs.Queue(owner as Construct, 'FailedEventsQueue', {
      enforceSSL: true,
      encryption: key ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
      encryptionMasterKey: key,
      retentionPeriod: DLQ_RETENTION,
      removalPolicy: settings.removalPolicy,
      // A dead-letter queue: it says so (AWS Control Tower CT.SQS.PR.1 accepts a redrive allow policy on dead-letter queues).
      redriveAllowPolicy: { redrivePermission: sqs.RedrivePermission.ALLOW_ALL },
    });
    acknowledgeDeadLetterQueue(queue, 'the dead-letter queue of the orchestrator\'s asynchronously invoked functions (plugin-outcome, '
      + 'plugin-registrar, stuck-runs) and of its EventBridge targets');
    if (key) allowEventBridge(owner, key);
    failedEventQueues.set(owner, queue);
  }
  return queue;
}

/** cdk-nag's queue rules that a dead-letter queue cannot meet. */
export function acknowledgeDeadLetterQueue(queue: IConstruct, what: string): void {
  acknowledgeRule(queue, 'AwsSolutions-SQS3', `This queue is itself a dead-letter destination: ${what}; cdk-nag only recognizes queues named as another queue's redrive target`);
  acknowledgeRedrivePolicy(queue, what);
}

/** cdk-nag Serverless's redrive-policy rule, which a dead-letter queue cannot meet. */
export function acknowledgeRedrivePolicy(queue: IConstruct, what: string): void {
  acknowledgeRule(queue, 'Serverless-SQSRedrivePolicy', `This queue is itself a dead-letter destination (${what}): a dead-letter queue of a dead-letter `
    + 'queue would only move the same messages again; its messages are kept for 14 days and alarmed on');
}

/**
 * EventBridge writes to a dead-letter queue encrypted with the key as the service (not a role): the
 * key policy lets events.amazonaws.com of this account use it for SQS only (no-op for an imported key).
 */
function allowEventBridge(scope: IConstruct, key: kms.IKey): void {
  const stack = Stack.of(scope);
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: `AllowEventBridgeDeadLetters${stack.resolve(complianceOf(scope)!.orchestratorName).replace(/[^A-Za-z0-9]/g, '')}`,
    principals: [new iam.ServicePrincipal('events.amazonaws.com')],
    actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
    resources: ['*'],
    conditions: {
      StringEquals: { 'aws:SourceAccount': stack.account, 'kms:ViaService': `sqs.${stack.region}.amazonaws.com` },
    },
  }), true);
}

/** Props of the AwsCustomResource provider of a plugin registration: the orchestrator's VPC. */
export function providerPlacement(settings: ComplianceSettings | undefined): { vpc?: ec2.IVpc; vpcSubnets?: ec2.SubnetSelection } {
  return settings?.vpc ? { vpc: settings.vpc, vpcSubnets: settings.vpcSubnets } : {};
}

/** Adds both tables to the user's backup plan: one selection, with AWS Backup's own role for DynamoDB. */
export function addTablesToBackupPlan(scope: Construct, plan: backup.IBackupPlan, tables: dynamodb.ITable[]): backup.BackupSelection {
  const selection = new backup.BackupSelection(scope, 'BackupSelection', {
    backupPlan: plan,
    resources: tables.map((table) => backup.BackupResource.fromArn(table.tableArn)),
  });
  const role = selection.node.tryFindChild('Role');
  if (role) {
    acknowledgeRule(role, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      'AWS Backup\'s service role for the orchestrator\'s tables: AWS maintains AWSBackupServiceRolePolicyForBackup with the actions '
      + 'every backup and copy needs (DynamoDB, KMS, tags); the selection names the two tables only');
    acknowledgeRule(role, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores]',
      'AWS Backup\'s service role for restoring the orchestrator\'s tables: AWS maintains AWSBackupServiceRolePolicyForRestores');
  }
  return selection;
}
