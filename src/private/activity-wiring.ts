// What an Orchestrator hands to each of its activities. Not part of the public API: activities
// are created by their Orchestrator (`Activity._create`).
import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { IConstruct, IDependable } from 'constructs';
import { OrchestratorHandlers } from '../handlers';

export interface ActivityWiring {
  readonly activityName: string;
  readonly orchestratorName: string;
  readonly parallelTimeout: Duration;
  readonly parallelHeartbeat: Duration;
  readonly pluginRetries: number;
  readonly handlers: OrchestratorHandlers;
  /** The plugin registry: `addPlugin` writes its items at deploy time. */
  readonly pluginTable: dynamodb.ITable;
  /** The status table (a queue plugin's bridge writes to it). */
  readonly statusTable: dynamodb.ITable;
  /** The shared state-machine role, without policy updates (the Orchestrator writes its policy). */
  readonly stateMachineRole: iam.IRole;
  readonly logGroup: logs.ILogGroup;
  readonly encryptionKey?: kms.IKey;
  /** What the state machine must be created after: the shared role and its policy (log delivery). */
  readonly stateMachineDependencies: IDependable[];
  /**
   * Set when the activity lives in one of its orchestrator's nested stacks (DESIGN.md "Scale"): its
   * public state machine and topics are then references by name, built in the environment of
   * `nameScope` (the orchestrator), so no stack needs an output of the nested stack to reach them.
   *
   * @default - the activity lives in the orchestrator's stack
   */
  readonly nested?: { readonly nameScope: IConstruct };
}

