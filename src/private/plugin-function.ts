// What one plugin function shares across the stages and activities it serves, kept in the construct
// tree (a child of the function) rather than in module-level maps: its asynchronous invocation config
// (one per function), the status table its environment names, and one invoke permission per
// sequential-stage role. Not part of the public API.
import { Annotations, Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct, IDependable } from 'constructs';
import { PLUGIN_DEFAULTS } from '../defaults';
import { ENV } from './contract';
import { grantTable } from './grants';
import { acknowledgeWildcards, KMS_ACTIONS_WILDCARD } from './nag';

/** Lambda destination (async invocation) to a function known by ARN. */
class FunctionArnDestination implements lambda.IDestination {
  constructor(private readonly functionArn: string) {}

  public bind(): lambda.DestinationConfig {
    return { destination: this.functionArn };
  }
}

interface OutcomeConfig {
  readonly outcomeArn: string;
  readonly maxEventAge?: number;
  readonly reportsStatus: boolean;
  readonly config: IDependable;
}

/** The plugin state of one function: `PluginFunction.of(handler)`. Creates no resource itself. */
export class PluginFunction extends Construct {
  /** The function's plugin state, created on first use. */
  public static of(handler: lambda.IFunction): PluginFunction {
    const existing = handler.node.tryFindChild(PluginFunction.ID);
    return existing instanceof PluginFunction ? existing : new PluginFunction(handler, PluginFunction.ID, handler);
  }

  private static readonly ID = 'CdkOrchestratorPluginFunction';

  private outcome?: OutcomeConfig;
  private statusTable?: dynamodb.ITable;
  private readonly sequentialPermissions = new Map<string, lambda.CfnPermission>();

  private constructor(scope: Construct, id: string, private readonly handler: lambda.IFunction) {
    super(scope, id);
  }

  /**
   * One statement in the plugin function's resource policy per sequential-stage role, however many
   * PRE/POST stages the function serves: the orchestrator's shared role never grows with plugins.
   */
  public sequentialInvokePermission(roleArn: string): lambda.CfnPermission {
    let permission = this.sequentialPermissions.get(roleArn);
    if (!permission) {
      const n = this.sequentialPermissions.size;
      // On the function itself (as before this state moved into the tree): the logical ids stay.
      permission = new lambda.CfnPermission(this.handler, n === 0 ? 'OrchestratorInvokePermission' : `OrchestratorInvokePermission${n + 1}`, {
        action: 'lambda:InvokeFunction',
        functionName: this.handler.functionArn,
        principal: roleArn,
      });
      this.sequentialPermissions.set(roleArn, permission);
    }
    return permission;
  }

  /**
   * The function's asynchronous invocation config: 2 retries, then on success and on failure a
   * destination record to plugin-outcome; the execution role may invoke plugin-outcome (Lambda invokes
   * destinations with it). One per function, shared by every PARALLEL stage it serves.
   */
  public outcomeDestinations(where: string, outcomeArn: string, maxEventAge: number | undefined, reportsStatus: boolean): IDependable {
    const handler = this.handler;
    const existing = this.outcome;
    if (existing) {
      if (existing.reportsStatus !== reportsStatus) {
        throw new Error(`${where}: function ${handler.node.path} is a PARALLEL plugin of several activities, with reportsStatus `
          + `${existing.reportsStatus} and ${reportsStatus}; one function reports its outcome one way (its Lambda destinations are shared): use one setting`);
      }
      if (existing.outcomeArn !== outcomeArn) {
        throw new Error(`${where}: function ${handler.node.path} is already a PARALLEL plugin of another orchestrator; `
          + 'its outcomes go to one orchestrator\'s plugin-outcome handler: use a separate function per orchestrator');
      }
      if (existing.maxEventAge !== maxEventAge) {
        throw new Error(`${where}: function ${handler.node.path} is a PARALLEL plugin of several activities with different timeouts `
          + `(${describeSeconds(existing.maxEventAge)} and ${describeSeconds(maxEventAge)}); the timeout is the function's maximum event age: use one timeout`);
      }
      return existing.config;
    }
    if (handler.node.tryFindChild('EventInvokeConfig')) {
      throw new Error(`${where}: function ${handler.node.path} already has an asynchronous invocation config (configureAsyncInvoke); `
        + 'a PARALLEL plugin reports its outcome through Lambda destinations that addPlugin configures: remove the configureAsyncInvoke call');
    }
    const dependencies = grantInvoke(handler, outcomeArn, 'cdk-orchestrator:pluginOutcomeGrant',
      'The execution role of this PARALLEL plugin is not known: allow it lambda:InvokeFunction on the orchestrator\'s plugin-outcome '
      + 'function, or its outcomes are not reported');
    const config = new lambda.EventInvokeConfig(handler, 'EventInvokeConfig', {
      function: handler,
      retryAttempts: PLUGIN_DEFAULTS.retryAttempts,
      maxEventAge: maxEventAge === undefined ? undefined : Duration.seconds(maxEventAge),
      // A plugin that reports its own state has nothing to add on success (saves an invocation per run).
      onSuccess: reportsStatus ? undefined : new FunctionArnDestination(outcomeArn),
      onFailure: new FunctionArnDestination(outcomeArn),
    });
    // Lambda checks the destination permission when the config is created.
    config.node.addDependency(...dependencies);
    this.outcome = { outcomeArn, maxEventAge, reportsStatus, config };
    return config;
  }

  /**
   * What a plugin that reports its own state needs (DESIGN.md "Plugin SDK"): GetItem and UpdateItem on
   * the status table only (and its key), and the table's name in its environment.
   */
  public reportStatusAccess(where: string, statusTable: dynamodb.ITable): IDependable {
    const handler = this.handler;
    const named = this.statusTable;
    if (named && named !== statusTable) {
      throw new Error(`${where}: function ${handler.node.path} already reports its state to another orchestrator's status table; `
        + `its environment names one table (${ENV.pluginStatusTable}): use a separate function per orchestrator`);
    }
    this.statusTable = statusTable;
    if (handler instanceof lambda.Function) {
      handler.addEnvironment(ENV.pluginStatusTable, statusTable.tableName);
    } else if (!named) {
      Annotations.of(handler).addWarningV2('cdk-orchestrator:pluginStatusTable',
        `This plugin reports its own state, but its environment cannot be changed here (an imported function): set ${ENV.pluginStatusTable} `
        + 'to the orchestrator\'s status table name');
    }
    // cdk-nag: the table key's action patterns (kms:GenerateDataKey*, kms:ReEncrypt*) are on that one key.
    if (handler.role) acknowledgeWildcards(handler.role, [KMS_ACTIONS_WILDCARD]);
    return grantTable(handler, statusTable, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], true);
  }
}

/**
 * `lambda:InvokeFunction` on `functionArn` for the function's execution role (a Lambda destination is
 * invoked with it); a warning `warningId` when the role is not known. What to wait for.
 */
export function grantInvoke(handler: lambda.IFunction, functionArn: string, warningId: string, warning: string): IDependable[] {
  const role = handler.role;
  if (!role) {
    Annotations.of(handler).addWarningV2(warningId, warning);
    return [];
  }
  const grant = role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [functionArn] }));
  return grant.policyDependable ? [grant.policyDependable] : [];
}

function describeSeconds(seconds: number | undefined): string {
  return seconds === undefined ? 'none' : Duration.seconds(seconds).toHumanString();
}
