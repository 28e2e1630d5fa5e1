/**
 * Per-test-file set-up for handler tests: this file's own status and plugin tables in the shared
 * DynamoDB Local (same keys and stream as DESIGN.md), scripted answers on the local engine's AWS endpoint (scripted-aws.ts), the status stream, and
 * the BUNDLED handlers (assets/handlers/<name>/index.js, built by global-setup) with their
 * environment pointing at all of that.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { DYNAMODB_LOCAL_ENDPOINT } from './dynamodb-endpoint';
import { ScriptedAws } from './scripted-aws';
import { pumpStream, StatusStream } from './status-stream';
import { PluginKind, PluginState, StageKey, StatusDocument } from '../../lambda/shared/status';
import { pluginStateUpdate } from '../../lambda/shared/status-store';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

type Handler<E = unknown, R = unknown> = (event: E) => Promise<R>;

export interface Handlers {
  startRun: Handler<unknown, { uid: string; workflow: string; rerun: boolean }>;
  sequentialStage: Handler<unknown, { state: string; started: boolean; invoked: string[] }>;
  parallelStage: Handler<unknown, { state: string; started: boolean; waiting: boolean; published: boolean }>;
  statusSummary: Handler<unknown, void>;
  stageFailure: Handler<unknown, never>;
}

export interface PluginRegistration {
  readonly activity: string;
  readonly stage: StageKey;
  readonly name: string;
  readonly mandatory?: boolean;
  readonly order?: number;
  readonly filterPolicy?: Record<string, unknown>;
  /** `timeout` of addPlugin, in seconds. */
  readonly timeoutSeconds?: number;
}

export interface PluginReport {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: StageKey;
  readonly plugin: string;
  readonly kind?: PluginKind;
  readonly state: PluginState;
  readonly message?: string;
}

export class Harness {
  /** Creates this file's tables and endpoint and loads the bundled handlers. */
  public static async create(prefix: string): Promise<Harness> {
    const endpoint = process.env[DYNAMODB_LOCAL_ENDPOINT];
    if (!endpoint) throw new Error(`${DYNAMODB_LOCAL_ENDPOINT} is not set: run the tests through jest (global-setup starts DynamoDB Local)`);
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    const raw = new DynamoDBClient({ endpoint, region: REGION, credentials });
    const suffix = randomUUID().slice(0, 8);
    const statusTable = `${prefix}-status-${suffix}`;
    const pluginTable = `${prefix}-plugins-${suffix}`;
    const created = await raw.send(new CreateTableCommand({
      TableName: statusTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'uid', KeyType: 'HASH' }, { AttributeName: 'workflow', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'uid', AttributeType: 'S' }, { AttributeName: 'workflow', AttributeType: 'S' }],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }));
    await raw.send(new CreateTableCommand({
      TableName: pluginTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'orchestratorId', KeyType: 'HASH' }, { AttributeName: 'subscriptionArn', KeyType: 'RANGE' }],
      AttributeDefinitions: [
        { AttributeName: 'orchestratorId', AttributeType: 'S' },
        { AttributeName: 'subscriptionArn', AttributeType: 'S' },
        { AttributeName: 'functionName', AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [{
        IndexName: 'functionName',
        KeySchema: [{ AttributeName: 'functionName', KeyType: 'HASH' }],
        Projection: { ProjectionType: 'ALL' },
      }],
    }));
    const fake = await ScriptedAws.start(endpoint);
    Object.assign(process.env, {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      // Handler DynamoDB traffic goes through the scripted endpoint, which proxies it to DynamoDB Local and records it.
      AWS_ENDPOINT_URL_DYNAMODB: fake.endpoint,
      AWS_ENDPOINT_URL_SFN: fake.endpoint,
      AWS_ENDPOINT_URL_SNS: fake.endpoint,
      AWS_ENDPOINT_URL_LAMBDA: fake.endpoint,
      STATUS_TABLE_NAME: statusTable,
      PLUGIN_TABLE_NAME: pluginTable,
      POWERTOOLS_SERVICE_NAME: 'cdk-orchestrator',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      // Metrics are computed (and validated) but not printed; test/handlers/observability.test.ts reads them.
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    const streams = new DynamoDBStreamsClient({ endpoint, region: REGION, credentials });
    const stream = new StatusStream(streams, created.TableDescription!.LatestStreamArn!);
    return new Harness(raw, streams, fake, stream, statusTable, pluginTable);
  }

  /** Direct (uncounted) access to DynamoDB Local, for arranging and asserting. */
  public readonly db: DynamoDBDocumentClient;
  public readonly handlers: Handlers;

  private constructor(
    private readonly raw: DynamoDBClient,
    private readonly streams: DynamoDBStreamsClient,
    public readonly fake: ScriptedAws,
    public readonly stream: StatusStream,
    public readonly statusTable: string,
    public readonly pluginTable: string,
  ) {
    this.db = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
    const load = (name: string) => jest.requireActual<{ handler: Handler }>(join(__dirname, '..', '..', 'assets', 'handlers', name, 'index.js')).handler;
    this.handlers = {
      startRun: load('start-run') as Handlers['startRun'],
      sequentialStage: load('sequential-stage') as Handlers['sequentialStage'],
      parallelStage: load('parallel-stage') as Handlers['parallelStage'],
      statusSummary: load('status-summary') as Handlers['statusSummary'],
      stageFailure: load('stage-failure') as Handlers['stageFailure'],
    };
  }

  public async close(): Promise<void> {
    await this.raw.send(new DeleteTableCommand({ TableName: this.statusTable }));
    await this.raw.send(new DeleteTableCommand({ TableName: this.pluginTable }));
    await this.fake.stop();
    this.raw.destroy();
    this.streams.destroy();
  }

  public topicArn(name: string): string {
    return `arn:aws:sns:${REGION}:${ACCOUNT}:orchestrator-${name}`;
  }

  public functionArn(name: string): string {
    return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
  }

  /** A registry item as the constructs write it (direct Lambda subscription for pre/post, SNS for async). */
  public async registerPlugin(plugin: PluginRegistration): Promise<void> {
    const subscriptionArn = plugin.stage === 'async'
      ? `${this.topicArn(`${plugin.activity}-parallel`)}:${randomUUID()}`
      : `lambda:${this.functionArn(plugin.name)}`;
    await this.db.send(new PutCommand({
      TableName: this.pluginTable,
      Item: {
        orchestratorId: `${plugin.activity}|${plugin.stage}`,
        subscriptionArn,
        functionName: plugin.name,
        functionArn: this.functionArn(plugin.name),
        pluginName: plugin.name,
        mandatory: plugin.mandatory ?? true,
        order: plugin.order ?? 90,
        source: 'cdk',
        ...(plugin.filterPolicy ? { filterPolicy: JSON.stringify(plugin.filterPolicy) } : {}),
        ...(plugin.timeoutSeconds ? { timeoutSeconds: plugin.timeoutSeconds } : {}),
      },
    }));
  }

  public async item(uid: string, workflow: string): Promise<StatusDocument | undefined> {
    const answer = await this.db.send(new GetCommand({ TableName: this.statusTable, Key: { uid, workflow }, ConsistentRead: true }));
    return answer.Item as StatusDocument | undefined;
  }

  public async itemCount(): Promise<number> {
    const answer = await this.db.send(new ScanCommand({ TableName: this.statusTable, Select: 'COUNT' }));
    return answer.Count ?? 0;
  }

  /** Overwrites part of an item, for arranging unusual states. */
  public async patch(uid: string, workflow: string, path: string[], value: unknown): Promise<void> {
    const names = Object.fromEntries(path.map((segment, i) => [`#p${i}`, segment]));
    await this.db.send(new UpdateCommand({
      TableName: this.statusTable,
      Key: { uid, workflow },
      UpdateExpression: `SET ${path.map((_, i) => `#p${i}`).join('.')} = :value`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ':value': value },
    }));
  }

  /**
   * A plugin reports its state the way the plugin SDK will: the shared conditional builder.
   * Returns false when the transition was refused (e.g. a late `In Progress` after `Complete`).
   */
  public async report(report: PluginReport): Promise<boolean> {
    try {
      await this.db.send(new UpdateCommand(pluginStateUpdate(
        { tableName: this.statusTable, key: { uid: report.uid, workflow: report.workflow } },
        { ...report, kind: report.kind ?? 'mandatory', now: new Date().toISOString() },
      )));
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /** Delivers pending stream records to the bundled status-summary; returns its invocation count. */
  public async pump(): Promise<number> {
    return pumpStream(this.stream, (event: DynamoDBStreamEvent) => this.handlers.statusSummary(event));
  }
}

/** Awaits a promise expected to reject and returns the error (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, any>;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
