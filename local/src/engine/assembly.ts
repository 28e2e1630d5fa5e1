/**
 * Reads a synthesized CDK app (a `cdk.out` directory, or a `Stack` synthesized in memory) into the
 * resources the local engine emulates. Everything comes from the templates and the cloud-assembly
 * manifests — never from a second description of the app — so what runs locally is what deploys.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { Environment, functionNameOf, Template, TemplateContext, TemplateResource, UnsupportedIntrinsicError } from './intrinsics';

export interface LocalTable {
  readonly name: string;
  readonly arn: string;
  /** Stable local ARN used in templates (`<tableArn>/stream/local`), when the table has a stream. */
  readonly streamArn?: string;
  readonly streamViewType?: string;
  readonly keySchema: { AttributeName: string; KeyType: string }[];
  readonly attributeDefinitions: { AttributeName: string; AttributeType: string }[];
  readonly globalSecondaryIndexes: any[];
  readonly localSecondaryIndexes: any[];
  readonly path?: string;
}

export interface LocalFunction {
  readonly logicalId: string;
  readonly stackName: string;
  readonly path?: string;
  readonly name: string;
  readonly arn: string;
  readonly handler: string;
  readonly runtime: string;
  /** Directory holding the function's code (an asset dir of the assembly). */
  readonly codeDir?: string;
  /** Inline code (`Code.ZipFile`). */
  readonly inlineCode?: string;
  readonly environment: Record<string, string>;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  readonly reservedConcurrency?: number;
  /** The template's `Tags` (CloudFormation adds them at CreateFunction). */
  readonly tags?: Record<string, string>;
}

export interface LocalTopic { readonly name: string; readonly arn: string; readonly path?: string }

export interface LocalSubscription {
  readonly arn: string;
  readonly topicArn: string;
  readonly protocol: string;
  readonly endpoint: string;
  readonly filterPolicy?: Record<string, unknown>;
  readonly filterPolicyScope: 'MessageAttributes' | 'MessageBody';
  readonly rawMessageDelivery: boolean;
}

export interface LocalQueue {
  readonly name: string;
  readonly arn: string;
  readonly url: string;
  readonly fifo: boolean;
  readonly path?: string;
  readonly visibilityTimeoutSeconds: number;
  readonly deadLetterTargetArn?: string;
  readonly maxReceiveCount?: number;
}

export interface LocalEventSourceMapping {
  readonly id: string;
  readonly functionName: string;
  readonly sourceArn: string;
  readonly batchSize: number;
  readonly filterPatterns: Record<string, unknown>[];
  /** -1: until the record expires (AWS's default for streams). */
  readonly maximumRetryAttempts: number;
  readonly bisectBatchOnFunctionError: boolean;
  readonly reportBatchItemFailures: boolean;
  readonly onFailureArn?: string;
  readonly enabled: boolean;
}

export interface LocalEventInvokeConfig {
  readonly functionName: string;
  readonly maximumRetryAttempts: number;
  readonly onSuccessArn?: string;
  readonly onFailureArn?: string;
}

export interface LocalStateMachine {
  readonly logicalId: string;
  readonly stackName: string;
  readonly path?: string;
  readonly name: string;
  readonly arn: string;
  readonly definition: Record<string, any>;
}

export interface LocalCustomResource {
  readonly logicalId: string;
  readonly stackName: string;
  readonly path?: string;
  /** The `Create` SDK call of an `AwsCustomResource`. */
  readonly create: { service: string; action: string; parameters?: Record<string, unknown>; region?: string };
  /** The provider function's ARN: the custom resource's calls are its role's. */
  readonly serviceToken?: string;
}

/** An EventBridge bus (`AWS::Events::EventBus`); the default bus always exists. */
export interface LocalEventBus { readonly name: string; readonly arn: string; readonly path?: string }

/** One target of a rule, with what EventBridge does to the event on the way. */
export interface LocalEventTarget {
  readonly id: string;
  readonly arn: string;
  /** Constant JSON text sent instead of the event. */
  readonly input?: string;
  /** JSONPath of the part of the event that is sent (`$.detail`). */
  readonly inputPath?: string;
  readonly inputTransformer?: { readonly inputPathsMap: Record<string, string>; readonly inputTemplate: string };
  /** AWS default: 185 retries within 24 hours. */
  readonly maximumRetryAttempts: number;
  readonly maximumEventAgeSeconds: number;
  readonly deadLetterArn?: string;
  readonly messageGroupId?: string;
  /** The role EventBridge assumes to reach the target (Step Functions, another bus). */
  readonly roleArn?: string;
}

/** An EventBridge rule (`AWS::Events::Rule`): an event pattern on a bus, or a schedule. */
export interface LocalEventRule {
  readonly name: string;
  readonly arn: string;
  readonly stackName: string;
  readonly path?: string;
  readonly eventBusName: string;
  readonly eventPattern?: Record<string, unknown>;
  readonly scheduleExpression?: string;
  readonly enabled: boolean;
  readonly targets: LocalEventTarget[];
}

export interface LocalParameter { readonly name: string; readonly value: string; readonly type: string }

/** A template parameter CloudFormation would read from SSM Parameter Store at deployment. */
export interface LocalSsmParameterRead {
  readonly stackName: string;
  /** The template parameter's name. */
  readonly parameter: string;
  /** The Parameter Store name it reads. */
  readonly ssmName: string;
  /** Whether `ssmParameters` gave its value. */
  readonly resolved: boolean;
  /**
   * Whether anything the engine runs reads the value (a function's environment, say), by the time
   * the assembly is loaded; a function's `Layers` are not (the engine provides no layers).
   */
  readonly used: boolean;
}

/**
 * A resource that takes part in authorization (roles and their policies, resource policies, keys,
 * and the resources whose role, key or tags decide a call), with its properties resolved leniently:
 * a property that does not resolve is left out (iam/policies.ts decides what that means).
 */
export interface LocalAuthResource {
  readonly type: string;
  readonly logicalId: string;
  readonly stackName: string;
  readonly path?: string;
  /** The ARN the engine gives the resource (undefined for types without one). */
  readonly arn?: string;
  readonly properties: Record<string, any>;
}

export interface LocalAssembly {
  readonly directory: string;
  readonly stacks: string[];
  readonly tables: LocalTable[];
  readonly functions: LocalFunction[];
  readonly topics: LocalTopic[];
  readonly subscriptions: LocalSubscription[];
  readonly queues: LocalQueue[];
  readonly eventSourceMappings: LocalEventSourceMapping[];
  readonly eventInvokeConfigs: LocalEventInvokeConfig[];
  readonly stateMachines: LocalStateMachine[];
  readonly customResources: LocalCustomResource[];
  readonly parameters: LocalParameter[];
  /** Template parameters of type `AWS::SSM::Parameter::Value<...>`, and whether each got a value. */
  readonly ssmParameterReads: LocalSsmParameterRead[];
  readonly eventBuses: LocalEventBus[];
  readonly eventRules: LocalEventRule[];
  /** What the authorizer reads (iam/policies.ts): roles, policies, permissions, keys, tags. */
  readonly authResources: LocalAuthResource[];
}

/** Anything with a `synth()` like `Stage`/`App`, or a `Stack` (its stage is synthesized). */
export type AppSource = string | { node: any };

export interface LoadAssemblyOptions {
  readonly tablePrefix?: string;
  /**
   * Values of the SSM parameters that template parameters of type `AWS::SSM::Parameter::Value<...>`
   * name (CloudFormation reads them from Parameter Store at deployment), by parameter name.
   * Others resolve to `unresolved-ssm-parameter:<name>`: harmless where the engine does not use
   * the value, such as a function's `Layers` (the engine provides no layers; the runtime's
   * modules come from the packages installed next to it, see function-host.ts).
   */
  readonly ssmParameters?: Record<string, string>;
}

/** Synthesizes (when given constructs) and loads an app. */
export function loadAssembly(source: AppSource, env: Environment, options: LoadAssemblyOptions = {}): LocalAssembly {
  const directory = typeof source === 'string' ? resolvePath(source) : synthesize(source);
  return new AssemblyReader(directory, env, options.tablePrefix, options.ssmParameters).read();
}

/** CloudFormation template parameter types whose value is read from SSM Parameter Store. */
const SSM_PARAMETER_TYPE = /^AWS::SSM::Parameter::Value</;

function synthesize(construct: { node: any }): string {
  // Lazy: aws-cdk-lib is only needed when the caller hands us constructs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Stage } = require('aws-cdk-lib') as typeof import('aws-cdk-lib');
  const stage = Stage.isStage(construct) ? construct : Stage.of(construct as any);
  if (!stage) throw new Error('loadAssembly: the construct is not inside an App or Stage');
  return stage.synth().directory;
}

interface StackTemplate { stackName: string; path: string; template: Template; dir: string }

class AssemblyReader {
  private readonly contexts: TemplateContext[] = [];
  private readonly contextPaths = new Map<TemplateContext, string>();
  private readonly exports = new Map<string, { ctx: TemplateContext; value: unknown }>();
  private readonly assets = new Map<string, string>();
  private readonly treePaths = new Map<string, Map<string, string>>();
  private readonly nestedPaths = new Map<string, string>();
  private readonly nested = new Map<TemplateContext, Map<string, TemplateContext>>();
  private readonly contextDirs = new Map<TemplateContext, string>();
  /** Top-level stacks by their CloudFormation name, for `Fn::GetStackOutput`. */
  private readonly stacksByName = new Map<string, TemplateContext>();
  private readonly ssmParameterReads: LocalSsmParameterRead[] = [];

  constructor(
    private readonly directory: string,
    private readonly env: Environment,
    private readonly tablePrefix?: string,
    private readonly ssmParameters: Record<string, string> = {},
  ) {}

  public read(): LocalAssembly {
    const stacks = this.stackTemplates(this.directory);
    for (const stack of stacks) {
      this.indexAssets(stack.dir);
      this.indexTree(stack.dir);
    }
    for (const stack of stacks) this.addContext(stack.stackName, stack.path, stack.template, stack.dir, undefined);
    // Exports are registered after all contexts exist: `Fn::ImportValue` resolves lazily.
    for (const ctx of this.contexts) {
      for (const output of Object.values(ctx.template.Outputs ?? {})) {
        if (output.Export) this.exports.set(String(ctx.resolve(output.Export.Name)), { ctx, value: output.Value });
      }
    }
    const assembly: LocalAssembly = {
      directory: this.directory,
      stacks: stacks.map((s) => s.stackName),
      tables: [],
      functions: [],
      topics: [],
      subscriptions: [],
      queues: [],
      eventSourceMappings: [],
      eventInvokeConfigs: [],
      stateMachines: [],
      customResources: [],
      parameters: [],
      ssmParameterReads: this.ssmParameterReads,
      eventBuses: [],
      eventRules: [],
      authResources: [],
    };
    for (const ctx of this.contexts) this.discover(ctx, assembly);
    return assembly;
  }

  private stackTemplates(dir: string): StackTemplate[] {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const out: StackTemplate[] = [];
    for (const [id, artifact] of Object.entries<any>(manifest.artifacts ?? {})) {
      if (artifact.type === 'aws:cloudformation:stack') {
        const template = JSON.parse(readFileSync(join(dir, artifact.properties.templateFile), 'utf8'));
        out.push({ stackName: artifact.properties.stackName ?? id, path: artifact.displayName ?? id, template, dir });
      } else if (artifact.type === 'cdk:cloud-assembly') {
        out.push(...this.stackTemplates(join(dir, artifact.properties.directoryName)));
      }
    }
    return out;
  }

  private addContext(stackName: string, path: string, template: Template, dir: string, parameters?: Record<string, unknown>) {
    const ctx: TemplateContext = new TemplateContext({
      env: this.env,
      stackName,
      template,
      parameters: this.withSsmParameters(stackName, template, parameters),
      tablePrefix: this.tablePrefix,
      importValue: (name) => {
        const exported = this.exports.get(name);
        if (!exported) throw new Error(`Fn::ImportValue: no stack exports "${name}"`);
        return exported.ctx.resolve(exported.value);
      },
      stackOutput: (producerName, outputName) => {
        const producer = this.stacksByName.get(producerName);
        if (!producer) throw new Error(`Fn::GetStackOutput: no stack named "${producerName}" in the assembly (stacks: ${[...this.stacksByName.keys()].join(', ')})`);
        const output = producer.template.Outputs?.[outputName];
        if (!output) throw new Error(`Fn::GetStackOutput: stack "${producerName}" has no output "${outputName}"`);
        return producer.resolve(output.Value);
      },
      nestedOutput: (logicalId, output) => {
        const nested = this.nested.get(ctx)?.get(logicalId);
        if (!nested) throw new Error(`${stackName}: nested stack ${logicalId} not found`);
        return nested.resolve(nested.template.Outputs?.[output]?.Value);
      },
    });
    this.contexts.push(ctx);
    if (parameters === undefined && !this.stacksByName.has(stackName)) this.stacksByName.set(stackName, ctx);
    this.contextPaths.set(ctx, path);
    this.contextDirs.set(ctx, dir);
    for (const [logicalId, resource] of ctx.resources()) {
      if (resource.Type !== 'AWS::CloudFormation::Stack') continue;
      const file = this.nestedTemplateFile(resource, dir);
      if (!file) continue;
      const nestedTemplate = JSON.parse(readFileSync(file, 'utf8'));
      // Parameters are resolved lazily: they may refer to resources of this (parent) template.
      const params = new Proxy({}, {
        has: (_, key) => typeof key === 'string' && key in (resource.Properties?.Parameters ?? {}),
        get: (_, key) => ctx.resolve(resource.Properties?.Parameters?.[key as string]),
      }) as Record<string, unknown>;
      const nestedPath = this.nestedPaths.get(`${path}\0${logicalId}`) ?? `${path}/${logicalId}`;
      const nested = this.addContext(`${stackName}-${logicalId}`.slice(0, 128), nestedPath, nestedTemplate, dir, params);
      if (!this.nested.has(ctx)) this.nested.set(ctx, new Map());
      this.nested.get(ctx)!.set(logicalId, nested);
    }
    return ctx;
  }

  /**
   * Template parameters typed `AWS::SSM::Parameter::Value<...>` hold a Parameter Store name (passed
   * in, or their default); their value is that parameter's, from `ssmParameters`.
   */
  private withSsmParameters(stackName: string, template: Template, passed?: Record<string, unknown>): Record<string, unknown> | undefined {
    const typed = Object.entries(template.Parameters ?? {}).filter(([, definition]) => SSM_PARAMETER_TYPE.test(String(definition.Type ?? '')));
    if (typed.length === 0) return passed;
    const reads = new Map(typed.map(([name, definition]) => {
      const ssmName = String(passed && name in passed ? passed[name] : definition.Default);
      const read = { stackName, parameter: name, ssmName, resolved: ssmName in this.ssmParameters, used: false };
      this.ssmParameterReads.push(read);
      return [name, read];
    }));
    const valueOf = (read: { ssmName: string; resolved: boolean; used: boolean }) => {
      read.used = true;
      return read.resolved ? this.ssmParameters[read.ssmName] : `unresolved-ssm-parameter:${read.ssmName}`;
    };
    return new Proxy({}, {
      has: (_, key) => typeof key === 'string' && (reads.has(key) || (passed !== undefined && key in passed)),
      get: (_, key) => (typeof key === 'string' && reads.has(key) ? valueOf(reads.get(key)!) : passed?.[key as string]),
    }) as Record<string, unknown>;
  }

  private nestedTemplateFile(resource: TemplateResource, dir: string): string | undefined {
    const metaPath = resource.Metadata?.['aws:asset:path'];
    if (metaPath && existsSync(join(dir, metaPath))) return join(dir, metaPath);
    const url = JSON.stringify(resource.Properties?.TemplateURL ?? '');
    const hash = /([0-9a-f]{64})\.json/.exec(url)?.[1];
    const asset = hash ? this.assets.get(`${hash}.json`) : undefined;
    return asset && existsSync(asset) ? asset : undefined;
  }

  /** Asset manifests map S3 object keys (what templates reference) to files in the assembly. */
  private indexAssets(dir: string) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.assets.json'))) {
      const manifest = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      for (const asset of Object.values<any>(manifest.files ?? {})) {
        for (const destination of Object.values<any>(asset.destinations ?? {})) {
          this.assets.set(destination.objectKey, join(dir, asset.source.path));
        }
      }
    }
  }

  /**
   * tree.json gives construct paths when templates carry no `aws:cdk:path` metadata (apps synthesized
   * without the CLI). Logical ids are unique per template, so they are keyed by their stack's path.
   */
  private indexTree(dir: string) {
    const file = join(dir, 'tree.json');
    if (!existsSync(file)) return;
    const visit = (node: any, stackPath: string) => {
      const fqn: string | undefined = node.constructInfo?.fqn;
      const isStack = fqn === 'aws-cdk-lib.Stack' || fqn === 'aws-cdk-lib.NestedStack';
      const current = isStack ? node.path : stackPath;
      const logicalId = node.attributes?.['aws:cdk:cloudformation:logicalId'];
      if (logicalId) {
        if (!this.treePaths.has(current)) this.treePaths.set(current, new Map());
        this.treePaths.get(current)!.set(logicalId, node.path.replace(/\/Resource$/, ''));
        // CDK's convention: nested stack `P` is deployed by `P.NestedStack/P.NestedStackResource` in its parent.
        const nested = /^(.*)\.NestedStack\/[^/]*\.NestedStackResource$/.exec(node.path);
        if (nested) this.nestedPaths.set(`${current}\0${logicalId}`, nested[1]);
      }
      for (const child of Object.values(node.children ?? {})) visit(child, current);
    };
    visit(JSON.parse(readFileSync(file, 'utf8')).tree, '');
  }

  private constructPath(ctx: TemplateContext, logicalId: string, resource: TemplateResource): string | undefined {
    const meta = resource.Metadata?.['aws:cdk:path'];
    if (typeof meta === 'string') return meta.replace(/\/Resource$/, '');
    return this.treePaths.get(this.contextPaths.get(ctx) ?? '')?.get(logicalId);
  }

  private discover(ctx: TemplateContext, out: LocalAssembly) {
    const push = <T>(list: T[], item: T) => list.push(item);
    for (const [logicalId, resource] of ctx.resources()) {
      const path = this.constructPath(ctx, logicalId, resource);
      const props = () => resolveProperties(ctx, logicalId, resource, path);
      if (AUTH_RESOURCE_TYPES.has(resource.Type)) out.authResources.push(authResource(ctx, logicalId, resource, path));
      switch (resource.Type) {
        case 'AWS::DynamoDB::Table':
        case 'AWS::DynamoDB::GlobalTable': {
          const p = props();
          const viewType = p.StreamSpecification?.StreamViewType;
          const arn = ctx.arn(logicalId);
          push(out.tables, {
            name: ctx.physicalName(logicalId),
            arn,
            path,
            streamArn: viewType ? `${arn}/stream/local` : undefined,
            streamViewType: viewType,
            keySchema: p.KeySchema,
            attributeDefinitions: p.AttributeDefinitions,
            globalSecondaryIndexes: p.GlobalSecondaryIndexes ?? [],
            localSecondaryIndexes: p.LocalSecondaryIndexes ?? [],
          });
          break;
        }
        case 'AWS::Lambda::Function': {
          const p = props();
          const key = p.Code?.S3Key as string | undefined;
          const metaAsset = resource.Metadata?.['aws:asset:path'];
          const dir = this.directoryOf(ctx);
          const codeDir = metaAsset && existsSync(join(dir, metaAsset)) ? join(dir, metaAsset) : key ? this.assets.get(key) : undefined;
          push(out.functions, {
            logicalId,
            stackName: ctx.stackName,
            path,
            name: ctx.physicalName(logicalId),
            arn: ctx.arn(logicalId),
            handler: p.Handler ?? 'index.handler',
            runtime: p.Runtime ?? 'unknown',
            codeDir,
            inlineCode: p.Code?.ZipFile,
            environment: Object.fromEntries(Object.entries(p.Environment?.Variables ?? {}).map(([k, v]) => [k, String(v)])),
            memoryMb: Number(p.MemorySize ?? 128),
            timeoutSeconds: Number(p.Timeout ?? 3),
            reservedConcurrency: p.ReservedConcurrentExecutions,
            tags: p.Tags ? Object.fromEntries((p.Tags as { Key: string; Value: string }[]).map((t) => [t.Key, String(t.Value)])) : undefined,
          });
          break;
        }
        case 'AWS::SNS::Topic':
          push(out.topics, { name: ctx.physicalName(logicalId), arn: ctx.arn(logicalId), path });
          break;
        case 'AWS::SNS::Subscription': {
          const p = props();
          push(out.subscriptions, {
            arn: ctx.ref(logicalId) as string,
            topicArn: p.TopicArn,
            protocol: p.Protocol,
            endpoint: p.Endpoint,
            filterPolicy: typeof p.FilterPolicy === 'string' ? JSON.parse(p.FilterPolicy) : p.FilterPolicy,
            filterPolicyScope: p.FilterPolicyScope ?? 'MessageAttributes',
            rawMessageDelivery: p.RawMessageDelivery === true || p.RawMessageDelivery === 'true',
          });
          break;
        }
        case 'AWS::SQS::Queue': {
          const name = ctx.physicalName(logicalId);
          const p = props();
          push(out.queues, {
            name,
            arn: ctx.arn(logicalId),
            url: ctx.getAtt(logicalId, 'QueueUrl') as string,
            fifo: name.endsWith('.fifo'),
            path,
            visibilityTimeoutSeconds: Number(p.VisibilityTimeout ?? 30),
            deadLetterTargetArn: p.RedrivePolicy?.deadLetterTargetArn,
            maxReceiveCount: p.RedrivePolicy?.maxReceiveCount === undefined ? undefined : Number(p.RedrivePolicy.maxReceiveCount),
          });
          break;
        }
        case 'AWS::Lambda::EventSourceMapping': {
          const p = props();
          push(out.eventSourceMappings, {
            id: `${ctx.stackName}-${logicalId}`,
            functionName: functionNameOf(String(p.FunctionName)),
            sourceArn: p.EventSourceArn,
            batchSize: Number(p.BatchSize ?? (String(p.EventSourceArn).startsWith('arn:aws:sqs') ? 10 : 100)),
            filterPatterns: (p.FilterCriteria?.Filters ?? []).map((f: { Pattern: string }) => JSON.parse(f.Pattern)),
            maximumRetryAttempts: p.MaximumRetryAttempts === undefined ? -1 : Number(p.MaximumRetryAttempts),
            bisectBatchOnFunctionError: Boolean(p.BisectBatchOnFunctionError),
            reportBatchItemFailures: (p.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
            onFailureArn: p.DestinationConfig?.OnFailure?.Destination,
            enabled: p.Enabled !== false,
          });
          break;
        }
        case 'AWS::Lambda::EventInvokeConfig': {
          const p = props();
          push(out.eventInvokeConfigs, {
            functionName: functionNameOf(String(p.FunctionName)),
            maximumRetryAttempts: p.MaximumRetryAttempts === undefined ? 2 : Number(p.MaximumRetryAttempts),
            onSuccessArn: p.DestinationConfig?.OnSuccess?.Destination,
            onFailureArn: p.DestinationConfig?.OnFailure?.Destination,
          });
          break;
        }
        case 'AWS::StepFunctions::StateMachine': {
          const p = props();
          let definition = typeof p.DefinitionString === 'string' ? JSON.parse(p.DefinitionString) : p.Definition;
          if (p.DefinitionSubstitutions) definition = substitute(definition, p.DefinitionSubstitutions);
          const name = ctx.physicalName(logicalId);
          push(out.stateMachines, { logicalId, stackName: ctx.stackName, path, name, arn: ctx.arn(logicalId), definition });
          break;
        }
        case 'AWS::SSM::Parameter': {
          const p = props();
          push(out.parameters, { name: ctx.physicalName(logicalId), value: String(p.Value), type: p.Type ?? 'String' });
          break;
        }
        case 'AWS::Events::EventBus':
          push(out.eventBuses, { name: ctx.physicalName(logicalId), arn: ctx.arn(logicalId), path });
          break;
        case 'AWS::Events::Rule':
          push(out.eventRules, eventRule(props(), { name: ctx.physicalName(logicalId), arn: ctx.arn(logicalId), stackName: ctx.stackName, path }));
          break;
        default:
          if (resource.Type.startsWith('Custom::')) {
            const p = props();
            const create = typeof p.Create === 'string' ? JSON.parse(p.Create) : p.Create;
            if (create?.service && create?.action) {
              const serviceToken = p.ServiceToken === undefined ? undefined : String(p.ServiceToken);
              push(out.customResources, { logicalId, stackName: ctx.stackName, path, create, serviceToken });
            }
          }
      }
    }
  }

  private directoryOf(ctx: TemplateContext): string {
    return this.contextDirs.get(ctx) ?? this.directory;
  }
}

/** Resource types whose properties decide who may call what (iam/policies.ts). */
const AUTH_RESOURCE_TYPES = new Set([
  'AWS::IAM::Role', 'AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy', 'AWS::Lambda::Permission', 'AWS::SNS::TopicPolicy',
  'AWS::SQS::QueuePolicy', 'AWS::KMS::Key', 'AWS::Lambda::Function', 'AWS::StepFunctions::StateMachine', 'AWS::SNS::Topic',
  'AWS::SQS::Queue', 'AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable', 'AWS::Logs::LogGroup', 'AWS::SSM::Parameter',
]);

function authResource(ctx: TemplateContext, logicalId: string, resource: TemplateResource, path?: string): LocalAuthResource {
  // Leniently: a property that does not resolve is left out (a policy that does not resolve grants
  // nothing, so the authorizer denies, as AWS would not be reached).
  const properties = resolveProperties(ctx, logicalId, resource, path, () => undefined);
  let arn: string | undefined;
  try {
    arn = ctx.arn(logicalId);
  } catch {
    arn = undefined;
  }
  return { type: resource.Type, logicalId, stackName: ctx.stackName, path, arn, properties };
}

/** A resource's properties could not be resolved: names the function, the resource and the property. */
export class AssemblyLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssemblyLoadError';
  }
}

/**
 * Properties the engine has no use for, left unresolved: a function's `Layers` (the engine provides
 * no layers; the runtime's modules come from the packages installed next to it, see function-host.ts),
 * so the SSM parameter CDK reads a layer's version from is not asked for.
 */
const UNUSED_PROPERTIES: Record<string, ReadonlySet<string>> = { 'AWS::Lambda::Function': new Set(['Layers']) };

/**
 * Resolves a resource's properties one by one, so an error names the property it came from;
 * `onError` may instead leave the property out (by returning).
 */
function resolveProperties(
  ctx: TemplateContext, logicalId: string, resource: TemplateResource, path?: string,
  onError: (e: unknown, key: string) => void = (e, key) => { throw loadError(ctx, logicalId, resource, path, e, key); },
): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [key, value] of Object.entries(resource.Properties ?? {})) {
    if (UNUSED_PROPERTIES[resource.Type]?.has(key)) continue;
    try {
      const resolved = ctx.resolve(value);
      if (resolved !== undefined) out[key] = resolved;
    } catch (e) {
      onError(e, key);
    }
  }
  return out;
}

function loadError(
  ctx: TemplateContext, logicalId: string, resource: TemplateResource, path: string | undefined, e: unknown, key: string,
): AssemblyLoadError {
  const what = e instanceof UnsupportedIntrinsicError ? `${e.functionName} is not supported` : (e as Error).message;
  return new AssemblyLoadError(`${what}: resource ${path ?? logicalId} (${logicalId}, ${resource.Type}) in stack ${ctx.stackName}, property ${key}`);
}

/** A rule's resolved properties in the engine's terms (AWS's defaults filled in). */
function eventRule(p: Record<string, any>, id: Pick<LocalEventRule, 'name' | 'arn' | 'stackName' | 'path'>): LocalEventRule {
  const bus = String(p.EventBusName ?? 'default');
  return {
    ...id,
    // EventBusName may be a name or an ARN.
    eventBusName: bus.startsWith('arn:') ? bus.split('event-bus/')[1] : bus,
    eventPattern: typeof p.EventPattern === 'string' ? JSON.parse(p.EventPattern) : p.EventPattern,
    scheduleExpression: p.ScheduleExpression,
    enabled: (p.State ?? 'ENABLED') === 'ENABLED',
    targets: (p.Targets ?? []).map((t: Record<string, any>): LocalEventTarget => ({
      id: String(t.Id),
      arn: String(t.Arn),
      input: t.Input,
      inputPath: t.InputPath,
      inputTransformer: t.InputTransformer
        ? { inputPathsMap: t.InputTransformer.InputPathsMap ?? {}, inputTemplate: String(t.InputTransformer.InputTemplate) }
        : undefined,
      maximumRetryAttempts: Number(t.RetryPolicy?.MaximumRetryAttempts ?? 185),
      maximumEventAgeSeconds: Number(t.RetryPolicy?.MaximumEventAgeInSeconds ?? 86_400),
      deadLetterArn: t.DeadLetterConfig?.Arn,
      messageGroupId: t.SqsParameters?.MessageGroupId,
      roleArn: t.RoleArn,
    })),
  };
}

/** `${Var}` substitutions of `DefinitionSubstitutions`, applied to every string of the definition. */
function substitute(value: any, vars: Record<string, unknown>): any {
  if (typeof value === 'string') return value.replace(/\$\{([^}]+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}
