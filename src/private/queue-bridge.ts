// The queue bridge of `addPlugin(fn, { stage: PARALLEL, queue: true })` (DESIGN.md "Queue bridge"):
// parallel topic -> bridge function -> SQS queue (with a dead-letter queue) -> the plugin. Every
// resource lives in the plugin function's stack, which refers to the orchestrator's (tables,
// plugin-outcome), never the reverse. Not part of the public API.
import * as path from 'path';
import { Annotations, Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, DependencyGroup, IConstruct } from 'constructs';
import { complianceOf, ComplianceSettings, grantNetworkInterfaces } from './compliance';
import { ENV } from './contract';
import { grantKey, grantTable, KMS_TOPIC_PUBLISH_ACTIONS } from './grants';
import { acknowledgeWildcards, KMS_ACTIONS_WILDCARD, XRAY_WILDCARD } from './nag';
import { handlerLogGroupName } from './naming';
import { PluginDeliveryParts, PluginTarget, subscribeFunction } from './plugin-wiring';
import { ResolvedPluginOptions, ResolvedWiring } from './resolve-plugin';
import {
  DEFAULT_LOG_RETENTION, DEFAULT_REMOVAL_POLICY, DLQ_RETENTION, HANDLER_FUNCTION_DEFAULTS, observabilityEnvironment,
  PLUGIN_DEFAULTS, POWERTOOLS_LAYER_PARAMETER_PREFIX, QUEUE_BRIDGE,
} from '../defaults';
import { OrchestratorHandlers } from '../handlers';

/** What a queue plugin needs from its orchestrator. */
export interface QueueBridgeWiring {
  readonly statusTable: dynamodb.ITable;
  readonly pluginTable: dynamodb.ITable;
  /** The bridge's on-failure destination: a delivery it could not queue is recorded `Error`. */
  readonly pluginOutcomeFunctionArn: string;
  readonly encryptionKey?: kms.IKey;
  readonly powertoolsLayer?: lambda.ILayerVersion;
  /**
   * Names the bridge's log group under the orchestrator's prefix, so the key may encrypt it, and is
   * the `orchestrator` dimension of the bridge's metrics.
   */
  readonly orchestratorName?: string;
  /** The orchestrator's VPC (docs/COMPLIANCE.md): the bridge runs there too. */
  readonly network?: { readonly vpc: ec2.IVpc; readonly vpcSubnets?: ec2.SubnetSelection; readonly securityGroups?: ec2.ISecurityGroup[] };
}

const CONSUME_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'];

/**
 * A queue plugin's resources, under `scope` (the plugin's `ActivityPlugin`): its queue and
 * dead-letter queue (SSL-only, encrypted), the plugin's event source on the queue, the dead-letter
 * queue's event source on the stack's bridge, and the bridge's subscription to the parallel topic.
 */
export function buildQueuePlugin(scope: Construct, handler: lambda.IFunction, target: PluginTarget,
  options: ResolvedPluginOptions, resolved: ResolvedWiring): PluginDeliveryParts {
  const wiring: QueueBridgeWiring = {
    statusTable: resolved.statusTable!,
    pluginTable: resolved.pluginTable,
    pluginOutcomeFunctionArn: resolved.pluginOutcomeFunctionArn!,
    encryptionKey: resolved.encryptionKey,
    powertoolsLayer: resolved.powertoolsLayer,
    orchestratorName: resolved.orchestratorName,
    network: networkOf(complianceOf(target.parallelTopic)),
  };
  const bridge = QueueBridge.of(scope, wiring, target.activityName);
  const fifo = options.fifoKey !== undefined;
  const encryption = {
    encryption: wiring.encryptionKey ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
    encryptionMasterKey: wiring.encryptionKey,
    enforceSSL: true,
    fifo: fifo || undefined,
  };
  const deadLetterQueue = new sqs.Queue(scope, 'DeadLetterQueue', { ...encryption, retentionPeriod: DLQ_RETENTION });
  const queue = new sqs.Queue(scope, 'Queue', {
    ...encryption,
    visibilityTimeout: visibilityTimeout(handler),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: QUEUE_BRIDGE.maxReceiveCount },
  });

  // Grants that grow with the plugins are on the queues' policies (they exist anyway: SSL-only).
  queue.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'QueueBridgeSend', principals: [bridge.role], actions: ['sqs:SendMessage'], resources: [queue.queueArn],
  }));
  deadLetterQueue.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'QueueBridgeDeadLetters', principals: [bridge.role], actions: CONSUME_ACTIONS, resources: [deadLetterQueue.queueArn],
  }));
  const pluginRole = handler.role;
  if (pluginRole) {
    queue.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'PluginConsume', principals: [pluginRole], actions: CONSUME_ACTIONS, resources: [queue.queueArn],
    }));
    if (wiring.encryptionKey) grantKey(pluginRole, wiring.encryptionKey, ['kms:Decrypt']);
  } else {
    Annotations.of(handler).addWarningV2('cdk-orchestrator:queuePluginGrant',
      'The execution role of this queue plugin is not known: allow it sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility '
      + 'and sqs:GetQueueAttributes on its queue (and kms:Decrypt on the orchestrator\'s key), or its event source cannot be created');
  }

  // Lambda checks the role's access to the queue when the mapping is created.
  const queueEventSource = new lambda.EventSourceMapping(scope, 'QueueEventSource', {
    target: handler,
    eventSourceArn: queue.queueArn,
    batchSize: QUEUE_BRIDGE.batchSize,
    reportBatchItemFailures: true,
  });
  queueEventSource.node.addDependency(policyOf(queue));
  const deadLetterEventSource = new lambda.EventSourceMapping(scope, 'DeadLetterEventSource', {
    target: bridge.function,
    eventSourceArn: deadLetterQueue.queueArn,
    batchSize: QUEUE_BRIDGE.deadLetterBatchSize,
    reportBatchItemFailures: true,
  });
  deadLetterEventSource.node.addDependency(policyOf(deadLetterQueue), bridge.grants);

  const subscribed = subscribeFunction(scope, target.parallelTopic, bridge.function.functionArn, options.filterPolicy,
    target.parallelTopicDependency);
  // The bridge must be able to run, queue and report before the first message arrives.
  subscribed.subscription.node.addDependency(bridge.grants, policyOf(queue));

  const registryFields: Record<string, Record<string, unknown>> = {
    queueUrl: { S: queue.queueUrl },
    deadLetterQueueArn: { S: deadLetterQueue.queueArn },
    maxReceiveCount: { N: String(QUEUE_BRIDGE.maxReceiveCount) },
  };
  if (options.fifoKey !== undefined) registryFields.fifoKey = { S: options.fifoKey };
  return {
    subscriptionArn: subscribed.subscriptionArn,
    subscription: subscribed.subscription,
    queue,
    deadLetterQueue,
    registryFields,
    dependencies: [subscribed.permission, queueEventSource, deadLetterEventSource, bridge.grants],
  };
}

/** The queue's policy (aws-cdk-lib creates it as child `Policy` with the first statement; `enforceSSL` adds one). */
function policyOf(queue: sqs.Queue): IConstruct {
  return queue.node.findChild('Policy');
}

/** AWS: 6 times the consumer's timeout (so throttled retries fit), within SQS's limits. */
function visibilityTimeout(handler: lambda.IFunction): Duration {
  const functionTimeout = handler instanceof lambda.Function
    ? handler.timeout ?? Duration.seconds(3) // Lambda's default
    : QUEUE_BRIDGE.unknownFunctionTimeout;
  const seconds = Math.min(QUEUE_BRIDGE.maxVisibilityTimeout.toSeconds(),
    Math.max(QUEUE_BRIDGE.minVisibilityTimeout.toSeconds(), QUEUE_BRIDGE.visibilityTimeoutFactor * functionTimeout.toSeconds()));
  return Duration.seconds(seconds);
}

/**
 * The bridge function of a stack: one per orchestrator serves all of the stack's queue plugins, except
 * that SNS keeps one subscription per topic and endpoint, so a second queue plugin of the same
 * activity in the same stack gets a second bridge.
 */
export class QueueBridge extends Construct {
  /** The stack's bridge for this orchestrator that does not yet serve `activityName`. */
  public static of(scope: IConstruct, wiring: QueueBridgeWiring, activityName: string): QueueBridge {
    const stack = Stack.of(scope);
    // The stack's bridges are its children (the construct tree is the record, not a module-level map).
    const bridges = stack.node.children.filter((child): child is QueueBridge => child instanceof QueueBridge);
    const orchestrator = [wiring.statusTable.tableArn, wiring.pluginTable.tableArn, wiring.pluginOutcomeFunctionArn].join('|');
    let bridge = bridges.find((b) => b.orchestrator === orchestrator && !b.activities.has(activityName));
    if (!bridge) {
      const id = bridges.length === 0 ? 'CdkOrchestratorQueueBridge' : `CdkOrchestratorQueueBridge${bridges.length + 1}`;
      bridge = new QueueBridge(stack, id, wiring, orchestrator);
    }
    bridge.activities.add(activityName);
    return bridge;
  }

  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  /** The role's policy and the on-failure destination: what a subscription must wait for. */
  public readonly grants: DependencyGroup;
  private readonly orchestrator: string;
  private readonly activities = new Set<string>();

  private constructor(scope: Construct, id: string, wiring: QueueBridgeWiring, orchestrator: string) {
    super(scope, id);
    this.orchestrator = orchestrator;
    const spec = QUEUE_BRIDGE.handler;
    // Named under the orchestrator's log-group prefix: the orchestrator's key policy lets CloudWatch
    // Logs use its key for exactly those names, so the bridge's logs are encrypted like the handlers'.
    const named = wiring.orchestratorName !== undefined;
    if (wiring.encryptionKey && !named) {
      Annotations.of(this).addWarning('The queue bridge\'s log group is not encrypted with the orchestrator\'s key: the orchestrator\'s '
        + 'name is unknown (an imported activity whose parallelTopicArn is a token); its queues are.');
    }
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: named ? handlerLogGroupName(this, wiring.orchestratorName!, `queue-bridge${id.slice('CdkOrchestratorQueueBridge'.length)}`) : undefined,
      encryptionKey: named ? wiring.encryptionKey : undefined,
      retention: DEFAULT_LOG_RETENTION,
      removalPolicy: DEFAULT_REMOVAL_POLICY,
    });
    // Own role instead of the AWSLambdaBasicExecutionRole managed policy: logs only to its log group.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cdk-orchestrator queue bridge of this stack\'s queue plugins',
    });
    logGroup.grantWrite(role);
    acknowledgeWildcards(role, [XRAY_WILDCARD, KMS_ACTIONS_WILDCARD]);
    // The registry says which queue a delivery goes to (GetItem) and which plugin a dead letter is of (Query).
    grantTable(role, wiring.statusTable, ['dynamodb:UpdateItem'], true);
    grantTable(role, wiring.pluginTable, ['dynamodb:GetItem', 'dynamodb:Query'], false);
    // Sending to and receiving from the queues, encrypted with the orchestrator's key (sqs:* is on the queues' policies).
    if (wiring.encryptionKey) grantKey(role, wiring.encryptionKey, KMS_TOPIC_PUBLISH_ACTIONS);
    // Lambda invokes the on-failure destination with the function's role.
    const outcomeGrant = role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [wiring.pluginOutcomeFunctionArn] }));
    this.role = role;
    if (wiring.network) grantNetworkInterfaces(role);

    this.function = new lambda.Function(this, 'Function', {
      // In the orchestrator's VPC when it has one; without its security groups, Lambda gives the
      // bridge one of its own in this stack (outbound only: the bridge calls AWS APIs).
      ...(wiring.network ? { vpc: wiring.network.vpc, vpcSubnets: wiring.network.vpcSubnets, securityGroups: wiring.network.securityGroups } : {}),
      ...HANDLER_FUNCTION_DEFAULTS,
      code: lambda.Code.fromAsset(path.join(__dirname, '..', '..', 'assets', 'handlers', spec.name)),
      layers: [powertoolsLayer(this, wiring.powertoolsLayer)],
      timeout: spec.timeout,
      description: spec.description,
      role,
      logGroup,
      environment: {
        [ENV.statusTableName]: wiring.statusTable.tableName,
        [ENV.pluginTableName]: wiring.pluginTable.tableName,
        // The `orchestrator` dimension of its metrics, like the orchestrator's handlers (left out when unknown).
        ...(named ? { [ENV.orchestratorName]: wiring.orchestratorName! } : {}),
        ...observabilityEnvironment(),
      },
    });
    // A delivery the bridge could not queue after Lambda's retries: plugin-outcome records the plugin Error
    // (found by the delivery's subscription, like a plain PARALLEL plugin). No on-success: the plugin reports.
    const config = new lambda.EventInvokeConfig(this, 'EventInvokeConfig', {
      function: this.function,
      retryAttempts: PLUGIN_DEFAULTS.retryAttempts,
      onFailure: { bind: () => ({ destination: wiring.pluginOutcomeFunctionArn }) },
    });
    if (outcomeGrant.policyDependable) config.node.addDependency(outcomeGrant.policyDependable);
    this.grants = new DependencyGroup(role, config);
  }
}

/** The VPC placement of the orchestrator's settings, if it has a VPC (an imported orchestrator has none). */
function networkOf(settings: ComplianceSettings | undefined): QueueBridgeWiring['network'] {
  return settings?.vpc ? { vpc: settings.vpc, vpcSubnets: settings.vpcSubnets, securityGroups: settings.securityGroups } : undefined;
}

/**
 * The bundles leave Powertools to a layer. An orchestrator's default layer is AWS's public one, read
 * from its SSM parameter: the bridge reads the same parameter in its own stack rather than importing
 * the value (an export cannot change while imported, and it changes with every Powertools release).
 * A layer the user gave the orchestrator is used as is.
 */
function powertoolsLayer(scope: Construct, given: lambda.ILayerVersion | undefined): lambda.ILayerVersion {
  const isDefault = !given || (given.node.id === 'PowertoolsLayer' && given.node.scope instanceof OrchestratorHandlers);
  if (given && !isDefault) return given;
  return lambda.LayerVersion.fromLayerVersionArn(scope, 'PowertoolsLayer',
    ssm.StringParameter.valueForStringParameter(scope, `${POWERTOOLS_LAYER_PARAMETER_PREFIX}${OrchestratorHandlers.powertoolsVersion()}`));
}
