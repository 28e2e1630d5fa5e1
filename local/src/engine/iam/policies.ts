/**
 * Every policy of the loaded app, built once at load from the templates (assembly.authResources):
 * each role's identity policies (inline `Policies`, `AWS::IAM::Policy` / `ManagedPolicy` attached to
 * it, the AWS managed policies it names), each resource's policy (Lambda permissions, topic and
 * queue policies, key policies), which role each function and state machine runs as, which
 * customer managed key encrypts each topic, queue and table, and every resource's tags.
 */
import type { LocalAssembly, LocalAuthResource } from '../assembly';
import { functionNameOf } from '../intrinsics';
import type { LoadedPolicy, PolicyEvaluator } from './evaluator';
import { awsManagedPolicy } from './managed-policies';

export interface RolePolicies {
  readonly arn: string;
  readonly name: string;
  readonly policies: LoadedPolicy[];
}

export class PolicyStore {
  /** A resource's ARN for its resource policy and tags: functions by unqualified ARN, indexes and streams by table. */
  public static ownerArn(resource: string): string {
    const fn = /^(arn:aws:lambda:[^:]+:[^:]+:function:[^:]+)(:.+)?$/.exec(resource);
    if (fn) return fn[1];
    const table = /^(arn:aws:dynamodb:[^:]+:[^:]+:table\/[^/]+)\/.*$/.exec(resource);
    return table ? table[1] : resource;
  }

  /** Identity policies by role ARN. */
  public readonly roles = new Map<string, RolePolicies>();
  /** The resource policy of a function (unqualified ARN), topic, queue or key, by ARN. */
  public readonly resourcePolicies = new Map<string, LoadedPolicy>();
  /** Role ARN by function ARN and by state machine ARN. */
  public readonly roleOf = new Map<string, string>();
  /** The customer managed key (ARN) of an encrypted topic, queue or table, by the resource's ARN. */
  public readonly keyOf = new Map<string, string>();
  /** Tags by resource ARN. */
  public readonly tags = new Map<string, Record<string, string>>();
  /** Policies the engine could not use (unknown managed policy, invalid document): logged once. */
  public readonly warnings: string[] = [];
  /** Resource-policy statements by the ARN they are attached to, gathered before loading. */
  private readonly statements = new Map<string, { where: string[]; statements: unknown[] }>();
  private readonly roleArnByName = new Map<string, string>();

  constructor(assembly: LocalAssembly, private readonly evaluator: PolicyEvaluator, private readonly env: { account: string; region: string }) {
    this.add(assembly);
  }

  /** Adds the policies of an app (the one loaded, or one deployed into the running engine later). */
  public add(assembly: LocalAssembly): void {
    const resources = assembly.authResources;
    const env = this.env;
    const queueArnByUrl = new Map(assembly.queues.map((q) => [q.url, q.arn]));
    for (const r of resources.filter((x) => x.type === 'AWS::IAM::Role' && x.arn)) {
      const name = r.arn!.split('/').pop()!;
      this.roleArnByName.set(name, r.arn!);
      this.roles.set(r.arn!, { arn: r.arn!, name, policies: [] });
    }
    const roleFor = (nameOrArn: unknown) => {
      const value = String(nameOrArn);
      return this.roles.get(value) ?? this.roles.get(this.roleArnByName.get(value) ?? '') ?? this.roles.get(this.roleArnByName.get(value.split('/').pop()!) ?? '');
    };
    const managed = new Map<string, unknown>();
    for (const r of resources.filter((x) => x.type === 'AWS::IAM::ManagedPolicy')) {
      managed.set(`arn:aws:iam::${env.account}:policy/${r.stackName}-${r.logicalId}`, r.properties.PolicyDocument);
      managed.set(`${r.stackName}-${r.logicalId}`, r.properties.PolicyDocument);
    }
    for (const r of resources) {
      const where = r.path ?? `${r.stackName}/${r.logicalId}`;
      switch (r.type) {
        case 'AWS::IAM::Role': {
          const role = this.roles.get(r.arn!)!;
          for (const p of r.properties.Policies ?? []) role.policies.push(this.identity(`${where}/${p.PolicyName}`, p.PolicyDocument));
          for (const arn of r.properties.ManagedPolicyArns ?? []) {
            const document = awsManagedPolicy(String(arn)) ?? managed.get(String(arn));
            if (document) role.policies.push(this.identity(String(arn), document));
            else this.warnings.push(`${where}: managed policy ${arn} is unknown to the local engine and grants nothing`);
          }
          break;
        }
        case 'AWS::IAM::Policy':
        case 'AWS::IAM::ManagedPolicy':
          for (const roleName of r.properties.Roles ?? []) {
            const role = roleFor(roleName);
            if (role) role.policies.push(this.identity(where, r.properties.PolicyDocument));
          }
          break;
        case 'AWS::Lambda::Function':
          if (r.properties.Role) this.roleOf.set(r.arn!, String(r.properties.Role));
          break;
        case 'AWS::StepFunctions::StateMachine':
          if (r.properties.RoleArn) this.roleOf.set(r.arn!, String(r.properties.RoleArn));
          break;
        case 'AWS::SNS::TopicPolicy':
          for (const topic of r.properties.Topics ?? []) this.addResourceStatements(String(topic), where, r.properties.PolicyDocument?.Statement);
          break;
        case 'AWS::SQS::QueuePolicy':
          for (const queue of r.properties.Queues ?? []) {
            this.addResourceStatements(queueArnByUrl.get(String(queue)) ?? String(queue), where, r.properties.PolicyDocument?.Statement);
          }
          break;
        case 'AWS::KMS::Key':
          this.addResourceStatements(r.arn!, where, r.properties.KeyPolicy?.Statement);
          break;
        case 'AWS::Lambda::Permission':
          this.addLambdaPermission(r, where);
          break;
        case 'AWS::SNS::Topic':
        case 'AWS::SQS::Queue':
          this.setKey(r.arn!, r.properties.KmsMasterKeyId);
          break;
        case 'AWS::Logs::LogGroup':
          this.setKey(r.arn!, r.properties.KmsKeyId);
          break;
        case 'AWS::DynamoDB::Table':
        case 'AWS::DynamoDB::GlobalTable':
          if (r.properties.SSESpecification?.SSEEnabled && r.properties.SSESpecification?.SSEType === 'KMS') {
            this.setKey(r.arn!, r.properties.SSESpecification.KMSMasterKeyId);
          }
          break;
      }
      if (r.arn) this.setTags(r.arn, r.properties.Tags);
    }
    this.loadResourcePolicies();
  }

  private identity(name: string, document: unknown): LoadedPolicy {
    const loaded = this.evaluator.load(name, document, 'identity');
    if (loaded.errors.length) this.warnings.push(`${name}: invalid identity policy (${loaded.errors.join('; ')})`);
    return loaded;
  }

  private addResourceStatements(arn: string, where: string, statements: unknown) {
    if (!statements) return;
    const entry = this.statements.get(arn) ?? { where: [], statements: [] };
    entry.where.push(where);
    entry.statements.push(...(Array.isArray(statements) ? statements : [statements]));
    this.statements.set(arn, entry);
  }

  /** `AWS::Lambda::Permission` as the statement Lambda adds to the function's policy. */
  private addLambdaPermission(r: LocalAuthResource, where: string) {
    const p = r.properties;
    const target = String(p.FunctionName ?? '');
    const functionArn = target.startsWith('arn:')
      ? target
      : `arn:aws:lambda:${this.env.region}:${this.env.account}:function:${functionNameOf(target)}`;
    const principal = String(p.Principal ?? '');
    const Principal = principal === '*' ? '*'
      : principal.endsWith('.amazonaws.com') ? { Service: principal }
        : /^\d{12}$/.test(principal) ? { AWS: `arn:aws:iam::${principal}:root` } : { AWS: principal };
    const Condition: Record<string, Record<string, string>> = {};
    if (p.SourceArn) Condition.ArnLike = { 'AWS:SourceArn': String(p.SourceArn) };
    if (p.SourceAccount) Condition.StringEquals = { 'AWS:SourceAccount': String(p.SourceAccount) };
    if (p.PrincipalOrgID) Condition.StringEquals = { ...Condition.StringEquals, 'aws:PrincipalOrgID': String(p.PrincipalOrgID) };
    this.addResourceStatements(PolicyStore.ownerArn(functionArn), where, {
      Sid: r.logicalId,
      Effect: 'Allow',
      Principal,
      Action: String(p.Action),
      Resource: functionArn,
      ...(Object.keys(Condition).length ? { Condition } : {}),
    });
  }

  private loadResourcePolicies() {
    for (const [arn, { where, statements }] of this.statements) {
      const loaded = this.evaluator.load(where.join(', '), { Version: '2012-10-17', Statement: statements }, 'resource');
      if (loaded.errors.length) this.warnings.push(`${where.join(', ')}: invalid resource policy (${loaded.errors.join('; ')})`);
      this.resourcePolicies.set(arn, loaded);
    }
  }

  private setKey(resourceArn: string, key: unknown) {
    if (typeof key !== 'string' || key.startsWith('alias/aws/') || key.includes(':alias/aws/')) return; // AWS managed keys grant their service
    this.keyOf.set(resourceArn, key.startsWith('arn:') ? key : `arn:aws:kms:${this.env.region}:${this.env.account}:key/${key}`);
  }

  /** A resource's tags (CloudFormation's `Tags` list or map); a function's as TagResource leaves them. */
  public setTags(arn: string, tags: unknown) {
    if (!tags) return;
    const entries: [string, string][] = Array.isArray(tags)
      ? tags.filter((t) => t && t.Key !== undefined).map((t) => [String(t.Key), String(t.Value)])
      : Object.entries(tags as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
    if (entries.length) this.tags.set(arn, Object.fromEntries(entries));
  }
}
