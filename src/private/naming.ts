// Physical names derived from the orchestrator and activity names. They are part of the public
// contract: a stack that did not create the orchestrator finds its resources by these names.
import { Arn, ArnFormat, Fn, Stack } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { IConstruct } from 'constructs';
import { ActivityStage } from '../activity-stage';

/** `<orchestratorName>-<activity>`: the activity's state machine. */
export function activityStateMachineName(orchestratorName: string, activityName: string): string {
  return `${orchestratorName}-${activityName}`;
}

const TOPIC_SUFFIX: Record<ActivityStage, string> = {
  [ActivityStage.PRE]: 'pre',
  [ActivityStage.PARALLEL]: 'parallel',
  [ActivityStage.POST]: 'post',
};

/** `<orchestratorName>-<activity>-pre|parallel|post`: the activity's stage topics. */
export function activityTopicName(orchestratorName: string, activityName: string, stage: ActivityStage): string {
  return `${orchestratorName}-${activityName}-${TOPIC_SUFFIX[stage]}`;
}

/**
 * ARN pattern of every activity state machine of an orchestrator (`...:stateMachine:<orchestratorName>-*`):
 * the task-token APIs authorize against the state machine, and a pattern keeps the shared
 * handlers' policies the same size however many activities there are.
 */
export function activityStateMachineArnPattern(scope: IConstruct, orchestratorName: string): string {
  return Stack.of(scope).formatArn({
    service: 'states',
    resource: 'stateMachine',
    resourceName: `${orchestratorName}-*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * ARN pattern of the executions of every activity state machine of an orchestrator
 * (`...:execution:<orchestratorName>-*:*`): what a workflow over many activities follows.
 */
export function activityExecutionArnPattern(scope: IConstruct, orchestratorName: string): string {
  return Stack.of(scope).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${orchestratorName}-*:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * An activity's ARNs built from its deterministic names in the environment of `scope`'s stack. They
 * hold no reference to the stack that creates the resources (only literals and the `AWS::Partition`,
 * `AWS::Region`, `AWS::AccountId` pseudo parameters), so any stack of the app can use them without
 * a cross-stack output: how the activities of a large orchestrator, in nested stacks, are reached.
 */
export function activityArnsByName(scope: IConstruct, orchestratorName: string, activityName: string) {
  const stack = Stack.of(scope);
  const stateMachineName = activityStateMachineName(orchestratorName, activityName);
  return {
    stateMachineArn: stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
    executionArnPattern: stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
    topicArn: (stage: ActivityStage) => stack.formatArn({
      service: 'sns', resource: activityTopicName(orchestratorName, activityName, stage), arnFormat: ArnFormat.NO_RESOURCE_NAME,
    }),
  };
}

/**
 * ARN pattern of the executions of a state machine (`...:execution:<name>:*`): from the name of a
 * state machine defined in this app, else from the parts of its ARN (works with tokens).
 */
export function executionArnPattern(scope: IConstruct, stateMachine: sfn.IStateMachine): string {
  if (stateMachine instanceof sfn.StateMachine) {
    return Stack.of(stateMachine).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }
  const parts = Arn.split(stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME);
  return Arn.format({
    partition: parts.partition,
    service: 'states',
    region: parts.region,
    account: parts.account,
    resource: 'execution',
    resourceName: `${parts.resourceName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  }, Stack.of(scope));
}

/**
 * Log group name of state machine logs. The `/aws/vendedlogs/` prefix keeps CloudWatch Logs'
 * account-wide resource policy from growing with every log group (AWS's recommendation for Step
 * Functions logging); the stack's UUID makes the name unique per stack instance, so a retained log
 * group never blocks re-creating a deleted stack.
 */
export function stateMachineLogGroupName(scope: IConstruct, name: string): string {
  const stackUuid = Fn.select(2, Fn.split('/', Stack.of(scope).stackId));
  return `/aws/vendedlogs/states/${name}-${stackUuid}`;
}

/** Prefix of every log group name of an orchestrator's handlers (without the leading slash's group). */
function handlerLogGroupPrefix(orchestratorName: string): string {
  return `/cdk-orchestrator/${orchestratorName}/`;
}

/**
 * Log group name of one of an orchestrator's handler functions:
 * `/cdk-orchestrator/<orchestratorName>/<handler>-<stack uuid>`. Named (not generated) so that the
 * customer managed key's CloudWatch Logs statement can name the orchestrator's log groups only.
 */
export function handlerLogGroupName(scope: IConstruct, orchestratorName: string, handler: string): string {
  const stackUuid = Fn.select(2, Fn.split('/', Stack.of(scope).stackId));
  return `${handlerLogGroupPrefix(orchestratorName)}${handler}-${stackUuid}`;
}

/**
 * Name patterns of every log group an orchestrator creates: its handlers', its activities' state
 * machine logs and its workflows' (`/aws/vendedlogs/states/<orchestratorName>-...`). Literals only, so
 * a key policy in another stack can use them.
 */
export function orchestratorLogGroupPatterns(orchestratorName: string): string[] {
  return [`${handlerLogGroupPrefix(orchestratorName)}*`, `/aws/vendedlogs/states/${orchestratorName}-*`];
}
