// Run-time plugin registration (DESIGN.md "Run-time registration"; docs/PLUGIN-PROTOCOL.md): rules
// on CloudTrail events that send subscriptions made outside CDK to the plugin-registrar function.
// Not part of the public API: `OrchestratorProps.runtimeRegistration` switches it on or off.
import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { failedEventsQueue } from './compliance';
import { ENV } from './contract';
import { grantTable } from './grants';
import { acknowledgeWildcards, WildcardJustification } from './nag';
import { activityExecutionArnPattern, activityStateMachineArnPattern } from './naming';

/** The plugin-registrar handler: bundle name and settings. */
export const PLUGIN_REGISTRAR_HANDLER = {
  name: 'plugin-registrar',
  // One handshake (at most 10 s) per event, plus releasing the running executions after an Unsubscribe.
  timeout: Duration.minutes(2),
  description: 'Registers plugins subscribed outside CDK (CloudTrail Subscribe / Unsubscribe / UpdateFunctionCode) after their initialize handshake',
};

/** The detail type EventBridge gives CloudTrail management events (they need a trail: see RuntimeRegistration). */
export const CLOUDTRAIL_DETAIL_TYPE = 'AWS API Call via CloudTrail';

/**
 * The tag that lets an orchestrator invoke a function it did not deploy: `cdk-orchestrator:<orchestratorName>`
 * with the value `plugin`. The registrar (initialize handshake) and sequential-stage (pre/post
 * plugins subscribed at run time) may invoke only functions of their account and region that carry it.
 */
export function pluginTag(orchestratorName: string): { key: string; value: string } {
  return { key: `cdk-orchestrator:${orchestratorName}`, value: 'plugin' };
}

/** Invoking plugins subscribed at run time: unknown at synth, so by tag (ABAC) rather than by ARN. */
export const TAGGED_PLUGIN_INVOKE_WILDCARD: WildcardJustification = {
  actions: ['lambda:InvokeFunction'],
  wildcardIn: 'Resource',
  reason: 'Plugins subscribed outside CDK are unknown at synth time: lambda:InvokeFunction on the functions of this account and region '
    + '("function:*") only when the function carries the tag cdk-orchestrator:<orchestratorName>=plugin (aws:ResourceTag condition), '
    + 'which the plugin\'s owner sets to let this orchestrator call it',
};

/** Releasing the runs that wait for an unsubscribed plugin: the activity's running executions. */
export const RUNNING_EXECUTIONS_WILDCARD: WildcardJustification = {
  actions: ['states:ListExecutions', 'states:DescribeExecution'],
  wildcardIn: 'Resource',
  reason: 'After an Unsubscribe the registrar lists the running executions of the activity\'s state machine and reads their input '
    + '(uid, workflow): "stateMachine:<orchestratorName>-*" and "execution:<orchestratorName>-*:*", the orchestrator\'s own state machines by name',
};

/** `cdk-orchestrator:<orchestratorName>=plugin`, as the docs, the coordinates and the registrar's errors show it. */
export function pluginTagText(orchestratorName: string): string {
  const tag = pluginTag(orchestratorName);
  return `${tag.key}=${tag.value}`;
}

/** The registrar's environment (lambda/plugin-registrar.ts). */
export function pluginRegistrarEnvironment(orchestratorName: string, pluginTable: dynamodb.ITable): Record<string, string> {
  return { [ENV.pluginTableName]: pluginTable.tableName, [ENV.orchestratorName]: orchestratorName, [ENV.pluginTag]: pluginTagText(orchestratorName) };
}

/**
 * Lets `role` invoke the functions of its account and region tagged for this orchestrator
 * (`aws:ResourceTag/cdk-orchestrator:<orchestratorName>` = `plugin`).
 */
export function grantInvokeTaggedPlugins(role: iam.IRole, orchestratorName: string): void {
  const tag = pluginTag(orchestratorName);
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'InvokeTaggedPlugins',
    actions: ['lambda:InvokeFunction'],
    resources: [Stack.of(role).formatArn({ service: 'lambda', resource: 'function', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
    conditions: { StringEquals: { [`aws:ResourceTag/${tag.key}`]: tag.value } },
  }));
  acknowledgeWildcards(role, [TAGGED_PLUGIN_INVOKE_WILDCARD]);
}

/**
 * What the registrar may do: read, write and delete registry items and query the `functionName`
 * index; mark plugin entries of running executions (UpdateItem on the status table); list and
 * describe the executions of the orchestrator's activity state machines; invoke tagged functions.
 */
export function grantPluginRegistrar(role: iam.IRole, props: {
  orchestratorName: string; pluginTable: dynamodb.ITable; statusTable: dynamodb.ITable; functionNameIndex: string;
}): void {
  grantTable(role, props.pluginTable, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'], true);
  iam.Grant.addToPrincipal({ grantee: role, actions: ['dynamodb:Query'], resourceArns: [`${props.pluginTable.tableArn}/index/${props.functionNameIndex}`] });
  grantTable(role, props.statusTable, ['dynamodb:UpdateItem'], true);
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'RunningExecutions',
    actions: ['states:ListExecutions', 'states:DescribeExecution'],
    resources: [activityStateMachineArnPattern(role, props.orchestratorName), activityExecutionArnPattern(role, props.orchestratorName)],
  }));
  acknowledgeWildcards(role, [RUNNING_EXECUTIONS_WILDCARD]);
  grantInvokeTaggedPlugins(role, props.orchestratorName);
}

export interface RuntimeRegistrationProps {
  readonly orchestratorName: string;
  /** The plugin-registrar function (`OrchestratorHandlers.pluginRegistrar`). */
  readonly registrar: lambda.IFunction;
  /** sequential-stage's role: it invokes pre/post plugins subscribed at run time (tagged functions). */
  readonly sequentialStageRole: iam.IRole;
}

/**
 * The EventBridge rules (default bus, this stack's account and region) that send CloudTrail events
 * about plugin subscriptions to the registrar:
 * - `Subscribe` with protocol lambda to a topic named `<orchestratorName>-*` and `Unsubscribe` of a
 *   subscription of such a topic (SNS);
 * - `UpdateFunctionCode*` of any function (Lambda): the registrar looks the function up in the
 *   registry's `functionName` index and ignores functions it has not registered.
 * Only calls that succeeded (no `errorCode`). EventBridge receives these events only when a CloudTrail
 * trail logs management events in the account (AWS's requirement for "AWS API Call via CloudTrail").
 */
export class RuntimeRegistration extends Construct {
  public readonly subscriptionRule: events.Rule;
  public readonly codeUpdateRule: events.Rule;

  constructor(scope: Construct, id: string, props: RuntimeRegistrationProps) {
    super(scope, id);
    const stack = Stack.of(this);
    // The orchestrator's topics and their subscriptions all begin with this ARN prefix.
    const topicPrefix = `arn:${stack.partition}:sns:${stack.region}:${stack.account}:${props.orchestratorName}-`;
    const succeeded = { errorCode: events.Match.doesNotExist() };
    this.subscriptionRule = new events.Rule(this, 'SubscriptionRule', {
      description: `Plugin subscriptions to the topics of orchestrator ${props.orchestratorName} (CloudTrail)`,
      eventPattern: {
        source: ['aws.sns'],
        detailType: [CLOUDTRAIL_DETAIL_TYPE],
        detail: {
          eventSource: ['sns.amazonaws.com'],
          $or: [
            { eventName: ['Subscribe'], requestParameters: { topicArn: events.Match.prefix(topicPrefix), protocol: ['lambda'] }, ...succeeded },
            { eventName: ['Unsubscribe'], requestParameters: { subscriptionArn: events.Match.prefix(topicPrefix) }, ...succeeded },
          ],
        },
      },
    });
    this.codeUpdateRule = new events.Rule(this, 'CodeUpdateRule', {
      description: `Code updates of plugins registered at run time with orchestrator ${props.orchestratorName} (CloudTrail)`,
      eventPattern: {
        source: ['aws.lambda'],
        detailType: [CLOUDTRAIL_DETAIL_TYPE],
        detail: {
          eventSource: ['lambda.amazonaws.com'],
          // The event name carries the API version (UpdateFunctionCode20150331v2).
          eventName: events.Match.prefix('UpdateFunctionCode'),
          ...succeeded,
        },
      },
    });
    // An event the registrar fails on is retried by EventBridge (its own retry policy), then dropped:
    // every step is idempotent, and the failure is in the registrar's log and Errors metric.
    // What it still fails on goes to the orchestrator's failed-events queue (docs/COMPLIANCE.md).
    const target = new targets.LambdaFunction(props.registrar, {
      retryAttempts: 2, maxEventAge: Duration.hours(1), deadLetterQueue: failedEventsQueue(this),
    });
    this.subscriptionRule.addTarget(target);
    this.codeUpdateRule.addTarget(target);
    grantInvokeTaggedPlugins(props.sequentialStageRole, props.orchestratorName);
  }
}
