/**
 * CloudFormation intrinsic functions resolved against local names, so a template's references
 * (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::ImportValue`, nested-stack parameters/outputs)
 * become the names and ARNs the local services answer to. Physical names are deterministic:
 * the template's own name property when set, else `<stack>-<logicalId>` (CloudFormation would add
 * a random suffix; locally a stable name is more useful).
 */

export interface Environment {
  readonly region: string;
  readonly account: string;
  /**
   * Base URL of queue URLs. The SQS client sends requests to the QueueUrl's host, so locally queue
   * URLs must point at the local endpoint. @default https://sqs.<region>.amazonaws.com
   */
  readonly queueUrlBase?: string;
}

export type Template = {
  Resources?: Record<string, TemplateResource>;
  Parameters?: Record<string, { Default?: unknown; Type?: string }>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
  Conditions?: Record<string, unknown>;
  Mappings?: Record<string, Record<string, Record<string, unknown>>>;
};

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, any>;
  Metadata?: Record<string, any>;
  Condition?: string;
  DependsOn?: string | string[];
}

/** A CloudFormation function the engine cannot resolve (thrown when the assembly loads). */
export class UnsupportedIntrinsicError extends Error {
  constructor(public readonly functionName: string) {
    super(`${functionName} is not supported by the local engine`);
    this.name = 'UnsupportedIntrinsicError';
  }
}

/** Every CloudFormation function the engine resolves (anything else named `Fn::*` fails at load). */
export const SUPPORTED_INTRINSICS = [
  'Ref', 'Condition', 'Fn::GetAtt', 'Fn::Join', 'Fn::Sub', 'Fn::Select', 'Fn::Split', 'Fn::ImportValue',
  'Fn::GetStackOutput', 'Fn::If', 'Fn::Equals', 'Fn::Not', 'Fn::And', 'Fn::Or', 'Fn::FindInMap', 'Fn::GetAZs',
  'Fn::Base64', 'Fn::ToJsonString', 'Fn::Length',
] as const;

/** Removes the property that holds it (CloudFormation's `AWS::NoValue`). */
const NO_VALUE = Symbol('AWS::NoValue');

/** Per-resource-type naming: which property holds the name, its maximum length, how to build the ARN. */
const NAMING: Record<string, { prop?: string; max: number; arn: (name: string, env: Environment) => string; ref?: 'name' | 'arn' | 'url' }> = {
  'AWS::DynamoDB::Table': { prop: 'TableName', max: 255, arn: (n, e) => `arn:aws:dynamodb:${e.region}:${e.account}:table/${n}`, ref: 'name' },
  'AWS::DynamoDB::GlobalTable': { prop: 'TableName', max: 255, arn: (n, e) => `arn:aws:dynamodb:${e.region}:${e.account}:table/${n}`, ref: 'name' },
  'AWS::Lambda::Function': { prop: 'FunctionName', max: 64, arn: (n, e) => `arn:aws:lambda:${e.region}:${e.account}:function:${n}`, ref: 'name' },
  'AWS::SNS::Topic': { prop: 'TopicName', max: 256, arn: (n, e) => `arn:aws:sns:${e.region}:${e.account}:${n}`, ref: 'arn' },
  'AWS::SQS::Queue': { prop: 'QueueName', max: 80, arn: (n, e) => `arn:aws:sqs:${e.region}:${e.account}:${n}`, ref: 'url' },
  'AWS::StepFunctions::StateMachine': { prop: 'StateMachineName', max: 80, arn: (n, e) => `arn:aws:states:${e.region}:${e.account}:stateMachine:${n}`, ref: 'arn' },
  'AWS::IAM::Role': { prop: 'RoleName', max: 64, arn: (n, e) => `arn:aws:iam::${e.account}:role/${n}`, ref: 'name' },
  'AWS::Logs::LogGroup': { prop: 'LogGroupName', max: 512, arn: (n, e) => `arn:aws:logs:${e.region}:${e.account}:log-group:${n}:*`, ref: 'name' },
  'AWS::KMS::Key': { max: 64, arn: (n, e) => `arn:aws:kms:${e.region}:${e.account}:key/${n}`, ref: 'name' },
  'AWS::Events::Rule': { prop: 'Name', max: 64, arn: (n, e) => `arn:aws:events:${e.region}:${e.account}:rule/${n}`, ref: 'name' },
  'AWS::Events::EventBus': { prop: 'Name', max: 256, arn: (n, e) => `arn:aws:events:${e.region}:${e.account}:event-bus/${n}`, ref: 'name' },
  'AWS::SSM::Parameter': { prop: 'Name', max: 1011, arn: (n, e) => `arn:aws:ssm:${e.region}:${e.account}:parameter/${n.replace(/^\//, '')}`, ref: 'name' },
};

export interface ContextOptions {
  readonly env: Environment;
  readonly stackName: string;
  readonly template: Template;
  /** Values of this template's parameters (nested stacks get them from the parent). */
  readonly parameters?: Record<string, unknown>;
  /** Cross-stack exports, looked up lazily by `Fn::ImportValue`. */
  readonly importValue: (name: string) => unknown;
  /** Another stack's output, looked up lazily by `Fn::GetStackOutput` (CDK's weak cross-stack references). */
  readonly stackOutput: (stackName: string, outputName: string) => unknown;
  /** Outputs of a nested stack created by resource `logicalId` of this template. */
  readonly nestedOutput: (logicalId: string, output: string) => unknown;
  /** Prepended to DynamoDB table names, so engines sharing one DynamoDB Local do not collide. */
  readonly tablePrefix?: string;
}

/** Resolves the intrinsics of one template (a stack or a nested stack). */
export class TemplateContext {
  public readonly stackName: string;
  public readonly template: Template;
  private readonly names = new Map<string, string>();
  private readonly conditions = new Map<string, boolean>();

  constructor(private readonly options: ContextOptions) {
    this.stackName = options.stackName;
    this.template = options.template;
  }

  public get env(): Environment {
    return this.options.env;
  }

  public resources(): [string, TemplateResource][] {
    return Object.entries(this.template.Resources ?? {}).filter(([, r]) => !r.Condition || this.condition(r.Condition));
  }

  /** Resolves every intrinsic in a value; `AWS::NoValue` properties disappear. */
  public resolve(value: unknown): any {
    const out = this.resolveInner(value);
    return out === NO_VALUE ? undefined : out;
  }

  /** The physical name of a resource (tables, functions, topics, queues, ...). */
  public physicalName(logicalId: string): string {
    const cached = this.names.get(logicalId);
    if (cached) return cached;
    const resource = this.resource(logicalId);
    const naming = NAMING[resource.Type];
    const explicit = naming?.prop ? this.resolve(resource.Properties?.[naming.prop]) : undefined;
    const generated = `${this.stackName}-${logicalId}`;
    let name = typeof explicit === 'string' ? explicit : generated.slice(0, naming?.max ?? 128);
    if (!explicit && resource.Type === 'AWS::SQS::Queue' && resource.Properties?.FifoQueue) name = `${name.slice(0, 75)}.fifo`;
    if (!explicit && resource.Type === 'AWS::SNS::Topic' && resource.Properties?.FifoTopic) name = `${name.slice(0, 251)}.fifo`;
    if (resource.Type.startsWith('AWS::DynamoDB::') && this.options.tablePrefix) name = `${this.options.tablePrefix}${name}`.slice(0, 255);
    this.names.set(logicalId, name);
    return name;
  }

  public arn(logicalId: string): string {
    const resource = this.resource(logicalId);
    const naming = NAMING[resource.Type];
    const name = this.physicalName(logicalId);
    if (naming) return naming.arn(name, this.env);
    const service = resource.Type.split('::')[1]?.toLowerCase() ?? 'local';
    return `arn:aws:${service}:${this.env.region}:${this.env.account}:${logicalId}/${name}`;
  }

  public ref(logicalId: string): unknown {
    const pseudo = this.pseudo(logicalId);
    if (pseudo !== undefined) return pseudo;
    if (this.template.Parameters && logicalId in this.template.Parameters) return this.parameter(logicalId);
    const resource = this.resource(logicalId);
    switch (resource.Type) {
      case 'AWS::SNS::Subscription':
        return `${this.resolve(resource.Properties?.TopicArn)}:${this.stackName}-${logicalId}`;
      case 'AWS::SQS::Queue':
        return queueUrl(this.env, this.physicalName(logicalId));
      case 'AWS::Lambda::Version':
        return `${this.resolve(resource.Properties?.FunctionName)}:1`;
      case 'AWS::Lambda::Alias':
        return `${this.resolve(resource.Properties?.FunctionName)}:${this.resolve(resource.Properties?.Name)}`;
      case 'AWS::CloudFormation::Stack':
        return `arn:aws:cloudformation:${this.env.region}:${this.env.account}:stack/${this.stackName}-${logicalId}/local`;
      default:
        return NAMING[resource.Type]?.ref === 'arn' ? this.arn(logicalId) : this.physicalName(logicalId);
    }
  }

  public getAtt(logicalId: string, attribute: string): unknown {
    const resource = this.resource(logicalId);
    if (resource.Type === 'AWS::CloudFormation::Stack' && attribute.startsWith('Outputs.')) {
      return this.options.nestedOutput(logicalId, attribute.slice('Outputs.'.length));
    }
    const name = this.physicalName(logicalId);
    switch (attribute) {
      case 'Arn':
      case 'TopicArn':
        return this.arn(logicalId);
      case 'StreamArn':
        return streamArn(this.arn(logicalId));
      case 'QueueUrl':
        return queueUrl(this.env, name);
      case 'Name':
      case 'TopicName':
      case 'QueueName':
        return name;
      case 'RoleId':
      case 'KeyId':
        return `${logicalId}Id`;
      default:
        return `${name}.${attribute}`;
    }
  }

  private resource(logicalId: string): TemplateResource {
    const resource = this.template.Resources?.[logicalId];
    if (!resource) throw new Error(`${this.stackName}: reference to unknown resource or parameter "${logicalId}"`);
    return resource;
  }

  private parameter(name: string): unknown {
    if (this.options.parameters && name in this.options.parameters) return this.options.parameters[name];
    const definition = this.template.Parameters?.[name];
    return definition?.Default;
  }

  private pseudo(name: string): unknown {
    switch (name) {
      case 'AWS::Region': return this.env.region;
      case 'AWS::AccountId': return this.env.account;
      case 'AWS::Partition': return 'aws';
      case 'AWS::URLSuffix': return 'amazonaws.com';
      case 'AWS::StackName': return this.stackName;
      case 'AWS::StackId': return `arn:aws:cloudformation:${this.env.region}:${this.env.account}:stack/${this.stackName}/local`;
      case 'AWS::NoValue': return NO_VALUE;
      case 'AWS::NotificationARNs': return [];
      default: return undefined;
    }
  }

  private condition(name: string): boolean {
    const cached = this.conditions.get(name);
    if (cached !== undefined) return cached;
    const value = Boolean(this.resolve(this.template.Conditions?.[name]));
    this.conditions.set(name, value);
    return value;
  }

  private resolveInner(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolveInner(v)).filter((v) => v !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [key] = keys;
      const arg = obj[key];
      switch (key) {
        case 'Ref': return this.ref(arg as string);
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? arg : String(arg).split(/\.(.+)/);
          return this.getAtt(id as string, this.resolve(attr) as string);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, unknown[]];
          return (this.resolve(parts) as unknown[]).map(String).join(sep);
        }
        case 'Fn::Sub': return this.sub(arg);
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          return (this.resolve(list) as unknown[])[Number(this.resolve(index))];
        }
        case 'Fn::Split': {
          const [sep, source] = arg as [string, unknown];
          return String(this.resolve(source)).split(sep);
        }
        case 'Fn::ImportValue': return this.options.importValue(this.resolve(arg) as string);
        case 'Fn::GetStackOutput': {
          const { StackName, OutputName } = this.resolve(arg) as { StackName: string; OutputName: string };
          return this.options.stackOutput(String(StackName), String(OutputName));
        }
        case 'Fn::If': {
          const [cond, whenTrue, whenFalse] = arg as [string, unknown, unknown];
          return this.resolveInner(this.condition(cond) ? whenTrue : whenFalse);
        }
        case 'Fn::Equals': {
          const [a, b] = this.resolve(arg) as [unknown, unknown];
          return JSON.stringify(a) === JSON.stringify(b);
        }
        case 'Fn::Not': return !(this.resolve(arg) as unknown[])[0];
        case 'Fn::And': return (this.resolve(arg) as unknown[]).every(Boolean);
        case 'Fn::Or': return (this.resolve(arg) as unknown[]).some(Boolean);
        case 'Condition': return this.condition(arg as string);
        case 'Fn::FindInMap': {
          const [map, top, second, options] = this.resolve(arg) as [string, string, string, { DefaultValue?: unknown }?];
          const found = this.template.Mappings?.[map]?.[top]?.[second];
          if (found !== undefined) return found;
          if (options && 'DefaultValue' in options) return options.DefaultValue;
          throw new Error(`Fn::FindInMap: mapping ${map} has no ${top}.${second}`);
        }
        case 'Fn::GetAZs': return ['a', 'b', 'c'].map((z) => `${this.env.region}${z}`);
        case 'Fn::Base64': return Buffer.from(String(this.resolve(arg))).toString('base64');
        case 'Fn::ToJsonString': return JSON.stringify(this.resolve(arg));
        case 'Fn::Length': return (this.resolve(arg) as unknown[]).length;
        default:
          if (key.startsWith('Fn::')) throw new UnsupportedIntrinsicError(key);
          break;
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      const resolved = this.resolveInner(v);
      if (resolved !== NO_VALUE) out[k] = resolved;
    }
    return out;
  }

  private sub(arg: unknown): string {
    const [text, vars] = Array.isArray(arg) ? arg as [string, Record<string, unknown>] : [arg as string, {}];
    const variables = this.resolve(vars) as Record<string, unknown>;
    return text.replace(/\$\{([^!}][^}]*)\}/g, (_, name: string) => {
      if (name in variables) return String(variables[name]);
      if (name.includes('.') && !name.startsWith('AWS::')) {
        const [id, attr] = name.split(/\.(.+)/);
        return String(this.getAtt(id, attr));
      }
      return String(this.ref(name));
    }).replace(/\$\{!/g, '${');
  }
}

export function queueUrl(env: Environment, name: string): string {
  return `${env.queueUrlBase ?? `https://sqs.${env.region}.amazonaws.com`}/${env.account}/${name}`;
}

/** A stable stream ARN per table; the engine maps it to DynamoDB Local's real stream. */
export function streamArn(tableArn: string): string {
  return `${tableArn}/stream/local`;
}

/** The last segment of an ARN or name (`arn:...:function:Name[:qualifier]` -> `Name`). */
export function functionNameOf(nameOrArn: string): string {
  const parts = nameOrArn.split(':');
  if (parts[0] !== 'arn') return parts[0];
  const i = parts.indexOf('function');
  return i >= 0 ? parts[i + 1] : parts[parts.length - 1];
}
