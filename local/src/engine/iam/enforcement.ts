/**
 * The engine's authorization, wired once per engine: who each function, state machine and custom
 * resource provider calls as, what each endpoint call needs, and whether each service delivery
 * (SNS → Lambda/SQS, Step Functions → Lambda, event source mappings, destinations) is allowed.
 */
import { createHash } from 'node:crypto';
import type { LocalAssembly, LocalFunction } from '../assembly';
import type { CallerIdentity } from '../cloudtrail';
import { Authorizer, Denial } from './authorizer';
import { AuthorizationUnavailableError, loadPolicyEvaluator } from './evaluator';
import { EndpointCall, permissionsFor } from './operations';
import { PolicyStore } from './policies';
import { Credentials, Principal, PrincipalRegistry } from './principals';

export type AuthorizationMode = 'enforce' | 'off';

export interface EnforcementOptions {
  readonly assembly: LocalAssembly;
  readonly account: string;
  readonly region: string;
  readonly stateMachineOfToken: (token: string) => string | undefined;
  readonly onDenied: (denial: Denial) => void;
  readonly onWarning: (line: string) => void;
}

/** The engine's authorization when enforced; `undefined` when off (or not installed and not asked for). */
export function createEnforcement(mode: AuthorizationMode | undefined, options: EnforcementOptions): Enforcement | undefined {
  if (mode === 'off') return undefined;
  const evaluator = loadPolicyEvaluator();
  if (typeof evaluator === 'string') {
    if (mode === 'enforce') throw new AuthorizationUnavailableError(evaluator);
    return undefined;
  }
  return new Enforcement(options, evaluator);
}

export class Enforcement {
  public readonly principals: PrincipalRegistry;
  public readonly authorizer: Authorizer;
  private readonly store: PolicyStore;
  private readonly queueArnByUrl: Map<string, string>;

  constructor(private readonly options: EnforcementOptions, evaluator: Exclude<ReturnType<typeof loadPolicyEvaluator>, string>) {
    this.principals = new PrincipalRegistry(options.account);
    this.store = new PolicyStore(options.assembly, evaluator, options);
    for (const warning of this.store.warnings) options.onWarning(warning);
    this.authorizer = new Authorizer(this.store, evaluator, options.account, options.region, options.onDenied);
    this.queueArnByUrl = new Map(options.assembly.queues.map((q) => [q.url, q.arn]));
  }

  /** Adds the roles, policies and tags of an app deployed into the running engine. */
  public addAssembly(assembly: LocalAssembly): void {
    this.store.add(assembly);
    for (const q of assembly.queues) this.queueArnByUrl.set(q.url, q.arn);
    for (const warning of this.store.warnings) this.options.onWarning(warning);
    this.store.warnings.length = 0;
    this.authorizer.clearCache();
  }

  /** A function created or re-tagged through Lambda's API: its execution role and its tags now. */
  public functionConfigured(functionArn: string, change: { readonly role?: string; readonly tags: Record<string, string> }): void {
    if (change.role) this.store.roleOf.set(functionArn, change.role);
    this.store.tags.delete(functionArn);
    this.store.setTags(functionArn, change.tags);
  }

  /**
   * EventBridge's delivery to a rule's target: Lambda, SQS and SNS targets by their resource policy
   * (principal `events.amazonaws.com`, `aws:SourceArn` = the rule), Step Functions and bus targets
   * as the role the target names.
   */
  public eventTargetDenial(ruleArn: string, target: { readonly arn: string; readonly roleArn?: string }): Denial | undefined {
    const service = target.arn.split(':')[2];
    const action = ({ lambda: 'lambda:InvokeFunction', sqs: 'sqs:SendMessage', sns: 'sns:Publish', states: 'states:StartExecution', events: 'events:PutEvents' } as Record<string, string>)[service];
    if (!action) return undefined;
    if (service === 'states' || service === 'events') {
      if (!target.roleArn) return service === 'states' ? this.allowsDelivery('events.amazonaws.com', action, target.arn, ruleArn) : undefined;
      return this.allowsRoleCall(this.principals.session(target.roleArn, 'events'), action, target.arn);
    }
    return this.allowsDelivery('events.amazonaws.com', action, target.arn, ruleArn);
  }

  /**
   * Log groups whose customer managed key CloudWatch Logs may not use. On AWS, creating such a log
   * group fails the deployment (`AccessDeniedException: The specified KMS key does not exist or is
   * not allowed to be used with Arn '<log group>'`); the engine refuses to start, as the stack would.
   */
  public logGroupKeyDenials(): Denial[] {
    const logs = this.principals.service(`logs.${this.options.region}.amazonaws.com`);
    const denials: Denial[] = [];
    for (const [resource, key] of this.store.keyOf) {
      if (!resource.startsWith('arn:aws:logs:')) continue;
      const logGroupArn = resource.replace(/:\*$/, '');
      const denied = this.allows(logs, 'kms:GenerateDataKey', key, { 'kms:EncryptionContext:aws:logs:arn': logGroupArn })
        ?? this.allows(logs, 'kms:Encrypt', key, { 'kms:EncryptionContext:aws:logs:arn': logGroupArn });
      if (denied) denials.push({ ...denied, message: `The specified KMS key does not exist or is not allowed to be used with Arn '${logGroupArn}' (${denied.message})` });
    }
    return denials;
  }

  /** Who signed a request, as CloudTrail's `userIdentity` names it. */
  public callerIdentity(accessKeyId: string | undefined): CallerIdentity {
    const principal = this.principals.byAccessKey(accessKeyId);
    const account = this.options.account;
    if (!principal.roleArn) return { type: 'AssumedRole', principalId: 'AROALOCALADMIN:admin', arn: principal.arn, accountId: account, accessKeyId };
    const roleName = principal.roleArn.split('/').pop()!;
    // A stable role id, shaped like AWS's (AROA + 17 characters).
    const roleId = `AROA${createHash('sha1').update(principal.roleArn).digest('hex').slice(0, 17).toUpperCase()}`;
    return {
      type: 'AssumedRole',
      principalId: `${roleId}:${principal.arn.split('/').pop()}`,
      arn: principal.arn,
      accountId: account,
      accessKeyId,
      sessionIssuer: { arn: principal.roleArn, userName: roleName, principalId: roleId },
    };
  }

  /** A function's role session (session name: the function's name, as Lambda names it). */
  public functionPrincipal(fn: Pick<LocalFunction, 'arn' | 'name'>): Principal {
    const role = this.store.roleOf.get(fn.arn);
    return role ? this.principals.session(role, fn.name) : { arn: `arn:aws:sts::${this.options.account}:assumed-role/unknown-role/${fn.name}` };
  }

  public functionCredentials(fn: LocalFunction): Credentials {
    return this.principals.credentialsFor(this.functionPrincipal(fn));
  }

  /** A state machine's role session. */
  public stateMachinePrincipal(stateMachineArn: string): Principal {
    const role = this.store.roleOf.get(stateMachineArn) ?? `arn:aws:iam::${this.options.account}:role/unknown-role`;
    return this.principals.session(role, stateMachineArn.split(':').pop()!);
  }

  public credentialsFor(principal: Principal): Credentials {
    return this.principals.credentialsFor(principal);
  }

  /** Throws the service's access-denied error unless the caller may make this endpoint call. */
  public authorizeCall(call: EndpointCall): void {
    const principal = this.principals.byAccessKey(call.accessKeyId);
    const permissions = permissionsFor(call, principal, {
      account: this.options.account,
      region: this.options.region,
      store: this.store,
      queueArnOf: (url) => this.queueArnByUrl.get(url) ?? `arn:aws:sqs:${this.options.region}:${this.options.account}:${url.split('/').pop()}`,
      stateMachineOfToken: this.options.stateMachineOfToken,
    });
    for (const permission of permissions) this.authorizer.require(permission, permission.service);
  }

  /**
   * Whether a service may deliver (a service principal, with the source's ARN) or a role may make
   * a call on the engine's side (a destination, a stream read); a denial is recorded.
   */
  public allows(principal: Principal, action: string, resource: string, context?: Record<string, string>): Denial | undefined {
    return this.authorizer.check({ principal, action, resource, context }, 'delivery');
  }

  /** A service principal's delivery to a resource, from `sourceArn`; the KMS key of an encrypted target must let the service use it. */
  public allowsDelivery(service: string, action: string, resource: string, sourceArn: string): Denial | undefined {
    const principal = this.principals.service(service);
    const context = { 'aws:SourceArn': sourceArn, 'aws:SourceAccount': this.options.account };
    const denied = this.allows(principal, action, resource, context);
    if (denied) return denied;
    const key = this.store.keyOf.get(resource);
    if (!key) return undefined;
    return this.allows(principal, 'kms:GenerateDataKey', key, context) ?? this.allows(principal, 'kms:Decrypt', key, context);
  }

  /** A role's own call made by a service for it (destinations, stream reads): with the resource's key, as the service would use it. */
  public allowsRoleCall(principal: Principal, action: string, resource: string): Denial | undefined {
    const denied = this.allows(principal, action, resource);
    if (denied) return denied;
    const key = this.store.keyOf.get(resource);
    if (!key) return undefined;
    const service = action.split(':')[0].toLowerCase();
    const kmsAction = /^(sqs:SendMessage|sns:Publish)$/i.test(action) ? 'kms:GenerateDataKey' : 'kms:Decrypt';
    return this.allows(principal, kmsAction, key, { 'kms:ViaService': `${service}.${this.options.region}.amazonaws.com`, 'kms:CallerAccount': this.options.account });
  }
}

export type { Denial } from './authorizer';
export type { AwsClientConfig, Principal } from './principals';
export { AuthorizationUnavailableError } from './evaluator';
