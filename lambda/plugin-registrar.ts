/**
 * plugin-registrar: keeps the plugin registry in step with subscriptions made outside CDK
 * (behaviour.md "Plugin registry"; docs/PLUGIN-PROTOCOL.md "Run-time registration").
 *
 * EventBridge rules of the orchestrator deliver CloudTrail "AWS API Call via CloudTrail" events:
 * - SNS `Subscribe` (protocol lambda) to one of this orchestrator's activity topics: the plugin is
 *   invoked synchronously with `{ "initialize": true }`; its answer (validated) becomes a registry
 *   item `source: 'runtime'` keyed by the SNS subscription ARN. A handshake that throws, times out
 *   or answers garbage is recorded on the item as `registrationError` (not a registered plugin: no
 *   stage waits for it), counted (`PluginRegistrationFailed`) and logged as an error.
 * - SNS `Unsubscribe`: the run-time item is deleted, and in the activity's running executions the
 *   plugin's pending parallel-stage entry becomes `Do Not Run`, so no stage keeps waiting for it.
 * - Lambda `UpdateFunctionCode*`: every run-time item of the function (index `functionName`) is
 *   refreshed with a new handshake.
 * An item written at deploy time (`source: 'cdk'`) is never changed or deleted here.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { containerClient } from './shared/clients';
import { deleteDocument, Document, getDocument, isConditionalCheckFailed, putDocument, queryPage, updateDocument } from './shared/documents';
import { pluginTableName, requiredEnv, statusTableName } from './shared/environment';
import { functionErrorMessage, OrchestratorError } from './shared/errors';
import {
  INITIALIZE_REQUEST, parseHandshakeAnswer, PluginConfig, registrationErrorText, resolvePluginConfig,
} from './shared/handshake';
import { isObject } from './shared/json';
import { addMetric, appendRunKeys, instrumented, logger, Metric } from './shared/observability';
import { pluginKind, registrationErrorOf, registryId } from './shared/registry';
import { StageKey, State } from './shared/status';
import { pluginStateUpdate } from './shared/status-store';
import { ENV, PLUGIN_TABLE_KEYS, REGISTRY } from '../src/private/contract';

const lambda = () => containerClient('lambda', LambdaClient);
const stepFunctions = () => containerClient('sfn', SFNClient);

/** How long the registrar waits for a plugin's answer to `initialize` (`HANDSHAKE_TIMEOUT_SECONDS` overrides it). */
const DEFAULT_HANDSHAKE_TIMEOUT_SECONDS = 10;

function handshakeTimeoutSeconds(): number {
  const configured = Number(process.env[ENV.handshakeTimeoutSeconds]);
  return Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_HANDSHAKE_TIMEOUT_SECONDS;
}
/** Running executions released at once after an Unsubscribe. */
const RELEASE_CONCURRENCY = 8;

/** The EventBridge event is not a CloudTrail API-call event this handler can read; nothing was written. */
export class InvalidRegistrationEvent extends OrchestratorError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRegistrationEvent';
  }
}

/** Topic name suffix -> registry stage key. */
const STAGE_OF_SUFFIX: Record<string, StageKey> = { pre: 'pre', parallel: 'async', post: 'post' };
const ACTIVITY_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const FUNCTION_ARN = /^arn:[a-z-]+:lambda:[a-z0-9-]+:\d{12}:function:([A-Za-z0-9_-]{1,64})(:[A-Za-z0-9_$-]+)?$/;

export interface RegistrarResult {
  /** What the event led to. */
  readonly outcome: 'registered' | 'registrationFailed' | 'unregistered' | 'refreshed' | 'ignored';
  readonly reason?: string;
  readonly activity?: string;
  readonly stage?: StageKey;
  readonly pluginName?: string;
  readonly registrationError?: string;
  /** Unsubscribe: running executions whose pending entry became `Do Not Run`. */
  readonly released?: number;
  /** UpdateFunctionCode: the registry items refreshed (failed ones included). */
  readonly refreshed?: number;
}

interface ApiCall {
  readonly eventSource: string;
  readonly eventName: string;
  readonly requestParameters: Record<string, unknown>;
  readonly responseElements: Record<string, unknown>;
  readonly errorCode?: string;
}

/** An activity topic of this orchestrator. */
interface ActivityTopic {
  readonly topicArn: string;
  readonly activity: string;
  readonly stage: StageKey;
  /** The activity's state machine (same partition, region and account as the topic). */
  readonly stateMachineArn: string;
}

type RegistryItem = Record<string, unknown>;

export const handler = instrumented(register);

async function register(rawEvent: unknown): Promise<RegistrarResult> {
  const call = parseCloudTrailEvent(rawEvent);
  if (call.errorCode) return ignored(`the ${call.eventName} call failed (${call.errorCode})`);
  if (call.eventSource === 'sns.amazonaws.com' && call.eventName === 'Subscribe') return subscribe(call);
  if (call.eventSource === 'sns.amazonaws.com' && call.eventName === 'Unsubscribe') return unsubscribe(call);
  if (call.eventSource === 'lambda.amazonaws.com' && call.eventName.startsWith('UpdateFunctionCode')) return updateFunctionCode(call);
  return ignored(`${call.eventSource} ${call.eventName} is not a registration event`);
}


/**
 * A value for an error message: strings quoted and cut at 100 characters, other values by their
 * type (JSON.stringify of a 10,000-deep array would overflow the stack: a RangeError, not our error).
 */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
  if (value === undefined) return 'nothing';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`;
}

/** The CloudTrail record of an EventBridge "AWS API Call via CloudTrail" event, or `InvalidRegistrationEvent`. */
export function parseCloudTrailEvent(event: unknown): ApiCall {
  const expected = 'expected an EventBridge "AWS API Call via CloudTrail" event { detail-type, detail: { eventSource, eventName, requestParameters, responseElements } }';
  if (!isObject(event) || event['detail-type'] !== 'AWS API Call via CloudTrail') {
    throw new InvalidRegistrationEvent(`Invalid plugin-registrar event: ${expected}`);
  }
  const detail = event.detail;
  if (!isObject(detail) || typeof detail.eventSource !== 'string' || typeof detail.eventName !== 'string' || detail.eventName === '') {
    throw new InvalidRegistrationEvent(`Invalid plugin-registrar event: detail.eventSource and detail.eventName must be strings; ${expected}`);
  }
  const errorCode = typeof detail.errorCode === 'string' && detail.errorCode !== '' ? detail.errorCode : undefined;
  if (!errorCode && detail.requestParameters !== undefined && detail.requestParameters !== null && !isObject(detail.requestParameters)) {
    throw new InvalidRegistrationEvent('Invalid plugin-registrar event: detail.requestParameters must be an object');
  }
  return {
    eventSource: detail.eventSource,
    eventName: detail.eventName,
    requestParameters: isObject(detail.requestParameters) ? detail.requestParameters : {},
    responseElements: isObject(detail.responseElements) ? detail.responseElements : {},
    errorCode,
  };
}

function requiredString(call: ApiCall, where: 'requestParameters' | 'responseElements', field: string): string {
  const value = call[where][field];
  if (typeof value !== 'string' || value === '') {
    throw new InvalidRegistrationEvent(`Invalid ${call.eventName} event: detail.${where}.${field} must be a non-empty string, got ${shown(value)}`);
  }
  return value;
}

function orchestratorName(): string {
  return requiredEnv(ENV.orchestratorName);
}

/**
 * `<orchestratorName>-<activity>-pre|parallel|post` in any partition, region and account, or
 * undefined when the topic is not one of this orchestrator's activity topics.
 */
export function activityTopicOf(topicArn: string, orchestrator: string): ActivityTopic | undefined {
  const parts = topicArn.split(':');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[2] !== 'sns') return undefined;
  const [, partition, , region, account, topicName] = parts;
  const prefix = `${orchestrator}-`;
  if (!topicName.startsWith(prefix)) return undefined;
  const rest = topicName.slice(prefix.length);
  const dash = rest.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const activity = rest.slice(0, dash);
  const stage = Object.hasOwn(STAGE_OF_SUFFIX, rest.slice(dash + 1)) ? STAGE_OF_SUFFIX[rest.slice(dash + 1)] : undefined;
  if (!stage || !ACTIVITY_NAME.test(activity)) return undefined;
  return {
    topicArn,
    activity,
    stage,
    stateMachineArn: `arn:${partition}:states:${region}:${account}:stateMachine:${orchestrator}-${activity}`,
  };
}

function ignored(reason: string, extra: Partial<RegistrarResult> = {}): RegistrarResult {
  logger.info('Registration event ignored', { reason });
  return { outcome: 'ignored', reason, ...extra };
}

// Subscribe ------------------------------------------------------------------------------------

async function subscribe(call: ApiCall): Promise<RegistrarResult> {
  const topicArn = requiredString(call, 'requestParameters', 'topicArn');
  const protocol = requiredString(call, 'requestParameters', 'protocol');
  if (protocol !== 'lambda') return ignored(`protocol ${protocol}: only Lambda subscriptions are plugins`);
  const topic = activityTopicOf(topicArn, orchestratorName());
  if (!topic) return ignored(`${topicArn} is not an activity topic of orchestrator ${orchestratorName()}`);
  const endpoint = requiredString(call, 'requestParameters', 'endpoint');
  const subscriptionArn = requiredString(call, 'responseElements', 'subscriptionArn');
  const fn = FUNCTION_ARN.exec(endpoint);
  if (!fn) throw new InvalidRegistrationEvent(`Invalid Subscribe event: the endpoint of a lambda subscription must be a function ARN, got ${shown(endpoint)}`);
  if (!subscriptionArn.startsWith(`${topicArn}:`)) {
    throw new InvalidRegistrationEvent(`Invalid Subscribe event: subscription ${subscriptionArn} is not a subscription of ${topicArn}`);
  }
  appendRunKeys({ activity: topic.activity, stage: topic.stage });
  const key = { orchestratorId: registryId(topic.activity, topic.stage), subscriptionArn };
  const existing = (await getDocument({ TableName: pluginTableName(), Key: key, ConsistentRead: true })).Item;
  if (existing?.source === REGISTRY.cdkSource) return ignored('the subscription is registered by CDK (addPlugin)', { activity: topic.activity, stage: topic.stage });

  const attributes = isObject(call.requestParameters.attributes) ? call.requestParameters.attributes : {};
  const now = new Date().toISOString();
  const item = await registryItem({
    key,
    topic,
    functionName: fn[1],
    functionArn: endpoint,
    filterPolicy: typeof attributes.FilterPolicy === 'string' && attributes.FilterPolicy !== '' ? attributes.FilterPolicy : undefined,
    filterPolicyScope: attributes.FilterPolicyScope === 'MessageBody' ? 'MessageBody' : undefined,
    registeredAt: typeof existing?.registeredAt === 'string' ? existing.registeredAt : now,
    now,
  }, await handshake(endpoint));
  const written = await putRuntimeItem(item, false);
  if (!written) return ignored('the subscription was registered by CDK meanwhile', { activity: topic.activity, stage: topic.stage });
  return reportRegistration(item, 'registered');
}

interface ItemBasis {
  readonly key: { orchestratorId: string; subscriptionArn: string };
  readonly topic: Pick<ActivityTopic, 'topicArn' | 'activity' | 'stage'>;
  readonly functionName: string;
  readonly functionArn: string;
  readonly filterPolicy?: string;
  readonly filterPolicyScope?: string;
  readonly registeredAt: string;
  readonly now: string;
}

type Handshake = { readonly ok: true; readonly config: PluginConfig } | { readonly ok: false; readonly error: string };

/** The registry item: the plugin's configuration for this activity, or the registration error. */
function registryItem(basis: ItemBasis, answer: Handshake): RegistryItem {
  const common = {
    ...basis.key,
    functionName: basis.functionName,
    functionArn: basis.functionArn,
    topicArn: basis.topic.topicArn,
    activity: basis.topic.activity,
    stage: basis.topic.stage,
    source: REGISTRY.runtimeSource,
    registeredAt: basis.registeredAt,
    updatedAt: basis.now,
    ...(basis.filterPolicy ? { filterPolicy: basis.filterPolicy } : {}),
    ...(basis.filterPolicyScope ? { filterPolicyScope: basis.filterPolicyScope } : {}),
  };
  if (!answer.ok) return { ...common, registrationError: answer.error };
  const config = resolvePluginConfig(answer.config, basis.topic.activity, basis.functionName);
  return Object.fromEntries(Object.entries({ ...common, ...config }).filter(([, value]) => value !== undefined));
}

/**
 * Writes a run-time item; never over a CDK item. `mustExist`: only refresh an item that is still
 * there (an Unsubscribe may have removed it meanwhile). False when the condition refused it.
 */
async function putRuntimeItem(item: RegistryItem, mustExist: boolean): Promise<boolean> {
  try {
    await putDocument({
      TableName: pluginTableName(),
      Item: item,
      ConditionExpression: mustExist
        ? 'attribute_exists(subscriptionArn) AND #source = :runtime'
        : 'attribute_not_exists(subscriptionArn) OR #source <> :cdk',
      ExpressionAttributeNames: { '#source': 'source' },
      ExpressionAttributeValues: mustExist ? { ':runtime': REGISTRY.runtimeSource } : { ':cdk': REGISTRY.cdkSource },
    });
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}

function reportRegistration(item: RegistryItem, outcome: 'registered' | 'refreshed'): RegistrarResult {
  const where = { activity: String(item.activity), stage: item.stage as StageKey };
  const error = registrationErrorOf(item);
  if (error) {
    logger.error('Plugin registration failed: its initialize handshake did not give a valid configuration', {
      functionArn: item.functionArn, subscriptionArn: item.subscriptionArn, registrationError: error,
    });
    addMetric(Metric.PLUGIN_REGISTRATION_FAILED);
    return { outcome: outcome === 'registered' ? 'registrationFailed' : outcome, ...where, registrationError: error };
  }
  logger.info(outcome === 'registered' ? 'Plugin registered' : 'Plugin registration refreshed', {
    plugin: item.pluginName, mandatory: item.mandatory, order: item.order, functionArn: item.functionArn, subscriptionArn: item.subscriptionArn,
  });
  addMetric(Metric.PLUGIN_REGISTERED);
  return { outcome, ...where, pluginName: String(item.pluginName) };
}

/** Invokes the plugin with `{ "initialize": true }` and validates its answer; never throws for the plugin's faults. */
export async function handshake(functionArn: string): Promise<Handshake> {
  let text: string;
  const timeoutSeconds = handshakeTimeoutSeconds();
  try {
    const response = await lambda().send(new InvokeCommand({
      FunctionName: functionArn,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify(INITIALIZE_REQUEST)),
    }), { abortSignal: AbortSignal.timeout(timeoutSeconds * 1000) });
    text = response.Payload ? new TextDecoder().decode(response.Payload) : '';
    if (response.FunctionError) return { ok: false, error: registrationErrorText(`initialize failed: ${functionErrorMessage(text, response.FunctionError)}`) };
  } catch (error) {
    const failure = error as Error;
    if (failure.name === 'AbortError' || failure.name === 'TimeoutError') {
      return { ok: false, error: `initialize timed out: no answer within ${timeoutSeconds} s` };
    }
    const tag = process.env[ENV.pluginTag];
    const hint = failure.name === 'AccessDeniedException' && tag
      ? ` (the orchestrator may invoke only functions tagged ${tag}: tag the plugin function)`
      : '';
    return { ok: false, error: registrationErrorText(`initialize could not be invoked: ${failure.name}: ${failure.message}${hint}`) };
  }
  let answer: unknown;
  try {
    answer = text === '' ? null : JSON.parse(text);
  } catch {
    return { ok: false, error: registrationErrorText(`invalid initialize answer: not JSON: ${text.slice(0, 60)}`) };
  }
  return parseHandshakeAnswer(answer);
}

// Unsubscribe ----------------------------------------------------------------------------------

async function unsubscribe(call: ApiCall): Promise<RegistrarResult> {
  const subscriptionArn = requiredString(call, 'requestParameters', 'subscriptionArn');
  const topicArn = subscriptionArn.slice(0, Math.max(0, subscriptionArn.lastIndexOf(':')));
  const topic = activityTopicOf(topicArn, orchestratorName());
  if (!topic) return ignored(`${subscriptionArn} is not a subscription of an activity topic of orchestrator ${orchestratorName()}`);
  appendRunKeys({ activity: topic.activity, stage: topic.stage });
  const key = { orchestratorId: registryId(topic.activity, topic.stage), subscriptionArn };
  let removed: RegistryItem | undefined;
  try {
    const answer = await deleteDocument({
      TableName: pluginTableName(),
      Key: key,
      ConditionExpression: '#source = :runtime',
      ExpressionAttributeNames: { '#source': 'source' },
      ExpressionAttributeValues: { ':runtime': REGISTRY.runtimeSource },
      ReturnValues: 'ALL_OLD',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    removed = answer.Attributes;
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    const where = { activity: topic.activity, stage: topic.stage };
    // No item at all: the subscription was never registered here (or CDK removed its own item).
    if (!error.Item) return ignored('the subscription is not in the registry', where);
    // A CDK-managed subscription removed by hand: its item stays until the next deployment removes it.
    logger.warn('A subscription registered by CDK was removed outside CDK; its registry item stays (remove the addPlugin call and deploy)', { subscriptionArn });
    return ignored('the subscription is registered by CDK (addPlugin)', where);
  }
  if (!removed) return ignored('the subscription is not in the registry', { activity: topic.activity, stage: topic.stage });
  addMetric(Metric.PLUGIN_UNREGISTERED);
  const pluginName = typeof removed.pluginName === 'string' ? removed.pluginName : undefined;
  // A parallel stage waits for its plugins' reports: release the runs waiting for this one.
  // (pre/post stages invoke the plugins they loaded; a retry or the next run no longer finds it.)
  const released = topic.stage === 'async' && pluginName && !registrationErrorOf(removed)
    ? await releaseRunningExecutions(topic, pluginName, removed.mandatory !== false)
    : 0;
  logger.info('Plugin unregistered', { plugin: pluginName, subscriptionArn, released });
  return { outcome: 'unregistered', activity: topic.activity, stage: topic.stage, pluginName, released };
}

/**
 * Marks the plugin's pending entry `Do Not Run` in every running execution of the activity: the
 * write changes the status item, so status-summary re-evaluates the parallel stage from the stream
 * and answers its task once nothing else is pending. Only executions running now are visited (the
 * activity's own state machine, not the status table): runs started later never create the entry.
 */
async function releaseRunningExecutions(topic: ActivityTopic, pluginName: string, mandatory: boolean): Promise<number> {
  const executions: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await stepFunctions().send(new ListExecutionsCommand({
      stateMachineArn: topic.stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000, nextToken,
    }));
    executions.push(...(page.executions ?? []).map((e) => e.executionArn!).filter(Boolean));
    nextToken = page.nextToken;
  } while (nextToken);

  let released = 0;
  const now = new Date().toISOString();
  const release = async (executionArn: string) => {
    const run = runOf((await stepFunctions().send(new DescribeExecutionCommand({ executionArn }))).input);
    if (!run) return;
    try {
      await updateDocument(pluginStateUpdate(
        { tableName: statusTableName(), key: run },
        {
          activity: topic.activity,
          stage: 'async',
          kind: pluginKind({ mandatory }),
          plugin: pluginName,
          state: State.DO_NOT_RUN,
          message: `Unsubscribed during the run (${now})`,
          now,
        },
      ));
      released++;
    } catch (error) {
      // No pending entry in that run (not at the parallel stage yet, or the plugin already reported).
      if (!isConditionalCheckFailed(error)) throw error;
    }
  };
  for (let i = 0; i < executions.length; i += RELEASE_CONCURRENCY) {
    await Promise.all(executions.slice(i, i + RELEASE_CONCURRENCY).map(release));
  }
  return released;
}

/** `{ uid, workflow }` of an activity execution's input. */
function runOf(input: string | undefined): { uid: string; workflow: string } | undefined {
  try {
    const parsed = input ? JSON.parse(input) : undefined;
    return isObject(parsed) && typeof parsed.uid === 'string' && typeof parsed.workflow === 'string'
      ? { uid: parsed.uid, workflow: parsed.workflow }
      : undefined;
  } catch {
    return undefined;
  }
}

// UpdateFunctionCode ---------------------------------------------------------------------------

/** A function name from a name, a full ARN or a partial ARN (`123456789012:function:name`). */
function functionNameOf(call: ApiCall): string {
  const fromResponse = call.responseElements.functionName;
  const raw = typeof fromResponse === 'string' && fromResponse !== '' ? fromResponse : requiredString(call, 'requestParameters', 'functionName');
  const match = /(?:^|:function:)([A-Za-z0-9_-]{1,64})(?::[A-Za-z0-9_$-]+)?$/.exec(raw);
  if (!match) throw new InvalidRegistrationEvent(`Invalid ${call.eventName} event: ${shown(raw)} is not a function name or ARN`);
  return match[1];
}

async function updateFunctionCode(call: ApiCall): Promise<RegistrarResult> {
  const functionName = functionNameOf(call);
  const items: RegistryItem[] = [];
  let startKey: Document | undefined;
  do {
    const page = await queryPage({
      TableName: pluginTableName(),
      IndexName: PLUGIN_TABLE_KEYS.functionNameIndex,
      KeyConditionExpression: 'functionName = :name',
      ExpressionAttributeValues: { ':name': functionName },
      ExclusiveStartKey: startKey,
    });
    items.push(...page.Items.filter((item) => item.source === REGISTRY.runtimeSource));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  if (items.length === 0) return ignored(`function ${functionName} has no run-time registration`);

  // One handshake per function ARN (a function subscribed through several aliases answers per alias).
  const answers = new Map<string, Promise<Handshake>>();
  const now = new Date().toISOString();
  const results: RegistrarResult[] = [];
  for (const old of items) {
    const functionArn = String(old.functionArn ?? functionName);
    if (!answers.has(functionArn)) answers.set(functionArn, handshake(functionArn));
    const [activity, stage] = String(old.orchestratorId).split('|') as [string, StageKey];
    const item = registryItem({
      key: { orchestratorId: String(old.orchestratorId), subscriptionArn: String(old.subscriptionArn) },
      topic: { topicArn: String(old.topicArn ?? ''), activity, stage },
      functionName,
      functionArn,
      filterPolicy: typeof old.filterPolicy === 'string' ? old.filterPolicy : undefined,
      filterPolicyScope: typeof old.filterPolicyScope === 'string' ? old.filterPolicyScope : undefined,
      registeredAt: typeof old.registeredAt === 'string' ? old.registeredAt : now,
      now,
    }, await answers.get(functionArn)!);
    if (await putRuntimeItem(item, true)) results.push(reportRegistration(item, 'refreshed'));
  }
  const failed = results.find((r) => r.registrationError);
  return {
    outcome: 'refreshed',
    refreshed: results.length,
    pluginName: results.find((r) => r.pluginName)?.pluginName,
    registrationError: failed?.registrationError,
  };
}
