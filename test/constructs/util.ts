// Helpers shared by the construct tests: synthesize a stack, make its template readable
// (references become `${Orch/StatusTable.Arn}`, named by construct path instead of hashed logical
// ids), read state machine definitions and IAM statements, and validate definitions with asl-validator.
import aslValidator from 'asl-validator';
import { App, CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

type Json = any;

export function newStack(id = 'TestStack'): Stack {
  return new Stack(new App(), id);
}

/** Validates a definition with asl-validator (on a deep copy: it mutates its input). '' when valid. */
export function aslErrors(definition: Json): string {
  const result = aslValidator(JSON.parse(JSON.stringify(definition)), { checkPaths: true, checkArn: false });
  return result.isValid ? '' : result.errorsText('; ');
}

export class Synth {
  public readonly template: Template;
  public readonly resources: Record<string, Json>;
  private readonly pathById = new Map<string, string>();
  private readonly idByPath = new Map<string, string>();

  constructor(public readonly stack: Stack) {
    this.template = Template.fromStack(stack);
    this.resources = this.template.toJSON().Resources ?? {};
    const prefix = `${stack.node.path}/`;
    for (const c of stack.node.findAll()) {
      if (!CfnElement.isCfnElement(c)) continue;
      const id = stack.resolve(c.logicalId) as string;
      const path = c.node.path.startsWith(prefix) ? c.node.path.slice(prefix.length) : c.node.path;
      const short = path.replace(/\/Resource$/, '');
      this.pathById.set(id, short);
      this.idByPath.set(short, id);
    }
  }

  /** Logical id of the resource at a construct path (relative to the stack, without `/Resource`). */
  public id(path: string): string {
    const id = this.idByPath.get(path);
    if (!id) throw new Error(`no resource at ${path}; known: ${[...this.idByPath.keys()].join(', ')}`);
    return id;
  }

  /** The resource at a construct path. */
  public resource(path: string): Json {
    return this.resources[this.id(path)];
  }

  /** Construct path of each resource of a type. */
  public pathsOf(type: string): string[] {
    return Object.entries(this.resources).filter(([, r]) => r.Type === type).map(([id]) => this.pathById.get(id) ?? id);
  }

  /** Resource counts by type. */
  public counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of Object.values(this.resources)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    return counts;
  }

  /** Any template value with references turned into readable strings. */
  public flat(value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.flat(v));
    if (value === null || typeof value !== 'object') return value;
    if (typeof value.Ref === 'string') return `\${${this.pathById.get(value.Ref) ?? value.Ref}}`;
    if (value['Fn::GetAtt']) {
      const [id, attr] = value['Fn::GetAtt'];
      return `\${${this.pathById.get(id) ?? id}.${attr}}`;
    }
    if (value['Fn::Join']) {
      const [sep, parts] = value['Fn::Join'];
      return (parts as Json[]).map((p) => {
        const f = this.flat(p);
        return typeof f === 'string' ? f : JSON.stringify(f);
      }).join(sep);
    }
    if (value['Fn::Select']) {
      const [index, list] = value['Fn::Select'];
      return `\${Select(${index},${JSON.stringify(this.flat(list))})}`;
    }
    if (value['Fn::Split']) {
      const [sep, source] = value['Fn::Split'];
      return `Split(${sep},${this.flat(source)})`;
    }
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) out[k] = this.flat(v);
    return out;
  }

  /** Parsed definition of the state machine at a construct path, references made readable. */
  public definition(path: string): Json {
    return JSON.parse(this.flat(this.resource(path).Properties.DefinitionString));
  }

  /** Every state machine: construct path -> parsed definition. */
  public definitions(): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const path of this.pathsOf('AWS::StepFunctions::StateMachine')) out[path] = this.definition(path);
    return out;
  }

  /** Statements of the identity policy of the role at a construct path (readable). */
  public roleStatements(rolePath: string): Json[] {
    const roleId = this.id(rolePath);
    const policies = Object.values(this.resources).filter((r) => r.Type === 'AWS::IAM::Policy'
      && (r.Properties.Roles as Json[]).some((ref) => ref.Ref === roleId));
    if (policies.length !== 1) throw new Error(`expected one policy for ${rolePath}, found ${policies.length}`);
    return this.flat(policies[0].Properties.PolicyDocument.Statement);
  }

  /** Statements of the policy document of the resource at a path (topic/queue policy, key policy). */
  public resourceStatements(path: string): Json[] {
    const props = this.resource(path).Properties;
    return this.flat((props.PolicyDocument ?? props.KeyPolicy).Statement);
  }

  /** Every IAM statement in the template, with where it is. */
  public allStatements(): { where: string; statement: Json }[] {
    const out: { where: string; statement: Json }[] = [];
    for (const [id, r] of Object.entries(this.resources)) {
      const doc = r.Properties?.PolicyDocument ?? r.Properties?.KeyPolicy;
      for (const statement of doc?.Statement ?? []) out.push({ where: `${this.pathById.get(id) ?? id} (${r.Type})`, statement: this.flat(statement) });
    }
    return out;
  }
}

export function asArray<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}
