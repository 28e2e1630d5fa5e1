/**
 * What a state machine's role needs for each task it runs (Step Functions calls as that role):
 * `lambda:InvokeFunction` for Lambda tasks; `states:StartExecution` for nested executions and, for
 * `.sync`, `states:DescribeExecution`/`StopExecution` plus `events:PutRule`/`PutTargets`/
 * `DescribeRule` on Step Functions' managed rule. SDK and optimized service tasks call the
 * endpoint with the role's credentials and are authorized there.
 */
import type { Enforcement } from './enforcement';

export interface TaskCall { service: string; action: string; pattern: string; input: any }

const SYNC_RULE = 'StepFunctionsGetEventsForStepFunctionsExecutionRule';

/** The error and cause a denied task fails with, as Step Functions reports them. */
export function authorizeTask(enforcement: Enforcement, stateMachineArn: string, task: TaskCall, env: { region: string; account: string }) {
  const principal = enforcement.stateMachinePrincipal(stateMachineArn);
  const needs: [string, string, string][] = [];
  const functionArn = (nameOrArn: string) => (nameOrArn.startsWith('arn:') ? nameOrArn : `arn:aws:lambda:${env.region}:${env.account}:function:${nameOrArn}`);
  if (task.service === 'lambda-function') needs.push(['Lambda.AWSLambdaException', 'lambda:InvokeFunction', functionArn(task.action)]);
  if (task.service === 'lambda' && task.action === 'invoke') needs.push(['Lambda.AWSLambdaException', 'lambda:InvokeFunction', functionArn(String(task.input?.FunctionName))]);
  if (task.service === 'states' && task.action === 'startExecution') {
    const machine = String(task.input?.StateMachineArn);
    needs.push(['StepFunctions.AWSStepFunctionsException', 'states:StartExecution', machine]);
    if (task.pattern === 'sync' || task.pattern === 'sync:2') {
      const execution = `${machine.replace(':stateMachine:', ':execution:')}:${task.input?.Name ?? 'execution'}`;
      needs.push(['StepFunctions.AWSStepFunctionsException', 'states:DescribeExecution', execution]);
      needs.push(['StepFunctions.AWSStepFunctionsException', 'states:StopExecution', execution]);
      for (const action of ['events:PutTargets', 'events:PutRule', 'events:DescribeRule']) {
        needs.push(['States.Runtime', action, `arn:aws:events:${env.region}:${env.account}:rule/${SYNC_RULE}`]);
      }
    }
  }
  for (const [error, action, resource] of needs) {
    const denial = enforcement.allows(principal, action, resource);
    if (denial) {
      const [service, code, status] = action.startsWith('lambda:') ? ['AWSLambda', 'AccessDeniedException', 403] : action.startsWith('states:') ? ['AWSStepFunctions', 'AccessDeniedException', 400] : ['AmazonEventBridge', 'AccessDeniedException', 400];
      return { error, cause: `${denial.message} (Service: ${service}; Status Code: ${status}; Error Code: ${code}; Request ID: local)` };
    }
  }
  return undefined;
}
