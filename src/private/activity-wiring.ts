// What an Orchestrator hands to each of its activities. Not part of the public API: activities
// are created by their Orchestrator (`Activity._create`).
import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
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
  /** The shared state-machine role, without policy updates (the Orchestrator writes its policy). */
  readonly stateMachineRole: iam.IRole;
  readonly logGroup: logs.ILogGroup;
  readonly encryptionKey?: kms.IKey;
}

