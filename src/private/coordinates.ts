// The orchestrator's coordinates in SSM Parameter Store (DESIGN.md "Coordinates"; docs/PLUGIN-PROTOCOL.md
// "Finding the orchestrator"): what a plugin deployed with another tool (SAM, Serverless Framework,
// Terraform) needs to find the tables, topics, state machines and functions. Not part of the public
// API: `OrchestratorProps.publishParameters` / `parameterPrefix` configure it.
import { Stack, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, IConstruct } from 'constructs';
import { ActivityStage } from '../activity-stage';
import { quote } from './validation';

/** `/cdk-orchestrator/<orchestratorName>` unless `parameterPrefix` says otherwise. */
export function defaultParameterPrefix(orchestratorName: string): string {
  return `/cdk-orchestrator/${orchestratorName}`;
}

/** Version of the JSON documents below; a consumer checks it before reading fields. */
export const COORDINATES_VERSION = 1;

/**
 * SSM names: `/`-separated levels of `a-z A-Z 0-9 _ . -`; a prefix beginning with `aws` or `ssm`
 * is reserved. We keep the prefix far below the 1,011-character limit of a parameter name (the
 * longest name below it adds `/activities/<64 characters>`), and at most 10 levels (AWS allows 15).
 */
const PREFIX_PATTERN = /^(\/[A-Za-z0-9_.-]+)+$/;
const MAX_PREFIX_LENGTH = 900;
const MAX_PREFIX_LEVELS = 10;

/** Throws a synth-time error naming what is wrong with a parameter prefix. */
export function validateParameterPrefix(where: string, prefix: string): void {
  if (Token.isUnresolved(prefix)) {
    throw new Error(`${where}: parameterPrefix must be a literal string (it names the parameters), got a token`);
  }
  const levels = prefix.split('/').length - 1;
  if (!PREFIX_PATTERN.test(prefix) || prefix.length > MAX_PREFIX_LENGTH || levels > MAX_PREFIX_LEVELS
    || /^\/(aws|ssm)/i.test(prefix)) {
    throw new Error(`${where}: parameterPrefix ${quote(prefix)} is not a valid SSM parameter path: it must begin with "/", have 1-${MAX_PREFIX_LEVELS} `
      + `levels of A-Z a-z 0-9 _ . - separated by "/", no trailing "/", at most ${MAX_PREFIX_LENGTH} characters, and not begin with "/aws" or "/ssm" (reserved)`);
  }
}

/** What the coordinates name: the activity's state machine and topics. */
export interface ActivityCoordinates {
  readonly activityName: string;
  readonly stateMachineArn: string;
  readonly topicArn: (stage: ActivityStage) => string;
  /** Where the activity's parameter is created: the activity construct (its own stack, nested or not). */
  readonly scope: IConstruct;
}

export interface CoordinatesProps {
  readonly orchestratorName: string;
  readonly prefix: string;
  readonly statusTable: dynamodb.ITable;
  readonly pluginTable: dynamodb.ITable;
  readonly functionNameIndex: string;
  readonly startRunFunction: lambda.IFunction;
  readonly pluginOutcomeFunction: lambda.IFunction;
  readonly sequentialStageRole: iam.IRole;
  /** The tag a function needs for the orchestrator to invoke it without a resource policy, when run-time registration is on. */
  readonly pluginTag?: string;
  readonly activities: readonly ActivityCoordinates[];
}

/**
 * The parameters (all `String`, standard tier: no charge):
 * - `<prefix>/statusTable/name|arn|streamArn`, `<prefix>/pluginTable/name|arn`,
 *   `<prefix>/startRunFunction/arn`, `<prefix>/pluginOutcomeFunction/arn`, `<prefix>/sequentialStageRole/arn`:
 *   one value each, for `{{resolve:ssm:...}}` in CloudFormation and SAM templates;
 * - `<prefix>/config`: the same as one JSON document (plus the path of the activity parameters), like
 *   the original's `config` parameter (SSM's standard tier holds 4 KB: so no list of activities in it);
 * - `<prefix>/activities/<activity>`: JSON `{ version, activity, stateMachineArn, topics: { pre, parallel, post } }`,
 *   one per activity (one resource per activity, next to the activity: in its nested stack beyond 25);
 * - `<prefix>/workflows/<workflow>`: JSON `{ version, workflow, stateMachineArn }`, created by each
 *   Workflow in its own stack (`publishWorkflowCoordinates`).
 */
export class Coordinates extends Construct {
  public readonly prefix: string;

  constructor(scope: Construct, id: string, props: CoordinatesProps) {
    super(scope, id);
    const { prefix } = props;
    this.prefix = prefix;
    const description = (what: string) => `${what} of orchestrator ${props.orchestratorName} (cdk-orchestrator)`;
    const single: Array<[string, string, string]> = [
      ['StatusTableName', 'statusTable/name', props.statusTable.tableName],
      ['StatusTableArn', 'statusTable/arn', props.statusTable.tableArn],
      ['PluginTableName', 'pluginTable/name', props.pluginTable.tableName],
      ['PluginTableArn', 'pluginTable/arn', props.pluginTable.tableArn],
      ['StartRunFunctionArn', 'startRunFunction/arn', props.startRunFunction.functionArn],
      ['PluginOutcomeFunctionArn', 'pluginOutcomeFunction/arn', props.pluginOutcomeFunction.functionArn],
      ['SequentialStageRoleArn', 'sequentialStageRole/arn', props.sequentialStageRole.roleArn],
    ];
    if (props.statusTable.tableStreamArn) single.push(['StatusTableStreamArn', 'statusTable/streamArn', props.statusTable.tableStreamArn]);
    for (const [constructId, path, value] of single) {
      new ssm.StringParameter(this, constructId, { parameterName: `${prefix}/${path}`, stringValue: value, description: description(path) });
    }

    const stack = Stack.of(this);
    const config = {
      version: COORDINATES_VERSION,
      orchestratorName: props.orchestratorName,
      statusTable: { name: props.statusTable.tableName, arn: props.statusTable.tableArn, streamArn: props.statusTable.tableStreamArn },
      pluginTable: { name: props.pluginTable.tableName, arn: props.pluginTable.tableArn, functionNameIndex: props.functionNameIndex },
      startRunFunctionArn: props.startRunFunction.functionArn,
      pluginOutcomeFunctionArn: props.pluginOutcomeFunction.functionArn,
      sequentialStageRoleArn: props.sequentialStageRole.roleArn,
      pluginTag: props.pluginTag,
      // Not the activity names: 200 long names would not fit in 4 KB. GetParametersByPath lists them.
      activityParameterPath: `${prefix}/activities/`,
      workflowParameterPath: `${prefix}/workflows/`,
    };
    new ssm.StringParameter(this, 'Config', {
      parameterName: `${prefix}/config`,
      stringValue: stack.toJsonString(config),
      description: description('Coordinates (JSON)'),
    });

    for (const activity of props.activities) {
      const activityStack = Stack.of(activity.scope);
      new ssm.StringParameter(activity.scope, 'Coordinates', {
        parameterName: `${prefix}/activities/${activity.activityName}`,
        stringValue: activityStack.toJsonString({
          version: COORDINATES_VERSION,
          activity: activity.activityName,
          stateMachineArn: activity.stateMachineArn,
          topics: {
            pre: activity.topicArn(ActivityStage.PRE),
            parallel: activity.topicArn(ActivityStage.PARALLEL),
            post: activity.topicArn(ActivityStage.POST),
          },
        }),
        description: description(`Activity ${activity.activityName} (JSON)`),
      });
    }
  }
}

/**
 * `<prefix>/workflows/<workflow>`: JSON `{ version, workflow, stateMachineArn }`, what a client
 * deployed with another tool needs to start runs. Created in the workflow's scope, hence its own
 * stack: the name is a literal and the value the workflow's own ARN, so a workflow in another stack
 * than its orchestrator adds no cross-stack reference.
 */
export function publishWorkflowCoordinates(scope: Construct, props: {
  readonly prefix: string;
  readonly orchestratorName: string;
  readonly workflowName: string;
  readonly stateMachineArn: string;
}): ssm.StringParameter {
  return new ssm.StringParameter(scope, 'Coordinates', {
    parameterName: `${props.prefix}/workflows/${props.workflowName}`,
    stringValue: Stack.of(scope).toJsonString({
      version: COORDINATES_VERSION,
      workflow: props.workflowName,
      stateMachineArn: props.stateMachineArn,
    }),
    description: `Workflow ${props.workflowName} (JSON) of orchestrator ${props.orchestratorName} (cdk-orchestrator)`,
  });
}
