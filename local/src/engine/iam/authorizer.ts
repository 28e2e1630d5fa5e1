/**
 * Decides every call the way AWS would — the caller's identity policies, the resource's policy,
 * explicit denies, conditions — with the evaluator (evaluator.ts), and caches each decision by
 * (principal, action, resource, context): the same few calls repeat on every run. A denial is
 * answered with the service's own error code, status and message, recorded and counted.
 */
import { AwsError } from '../aws-endpoint';
import type { Decision, PolicyEvaluator } from './evaluator';
import { AWS_MANAGED_POLICIES } from './managed-policies';
import { PolicyStore } from './policies';
import type { Principal } from './principals';

/** Services by how they answer a denied call. */
export type DenyingService = 'dynamodb' | 'lambda' | 'sns' | 'sqs' | 'states' | 'ssm' | 'kms' | 'events' | 'delivery';

export interface AuthorizationRequest {
  readonly principal: Principal;
  readonly action: string;
  readonly resource: string;
  /** Request context beyond what every request has (`aws:SourceArn`, `kms:ViaService`, ...). */
  readonly context?: Record<string, string>;
}

export interface Denial {
  readonly time: Date;
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** AWS's message: `User: ... is not authorized to perform: ... on resource: ... because ...`. */
  readonly message: string;
  /** What was refused: an API call of a service, or a delivery (SNS → Lambda, a destination, ...). */
  readonly service: DenyingService;
}

const DENIAL_ERRORS: Record<Exclude<DenyingService, 'delivery'>, { code: string; status: number }> = {
  dynamodb: { code: 'AccessDeniedException', status: 400 },
  states: { code: 'AccessDeniedException', status: 400 },
  ssm: { code: 'AccessDeniedException', status: 400 },
  kms: { code: 'AccessDeniedException', status: 400 },
  events: { code: 'AccessDeniedException', status: 400 },
  lambda: { code: 'AccessDeniedException', status: 403 },
  sns: { code: 'AuthorizationError', status: 403 },
  sqs: { code: 'AccessDenied', status: 403 },
};

export class Authorizer {
  public readonly denials: Denial[] = [];
  /** Decisions taken by the evaluator (cache misses), answered from the cache, and the main-thread ms spent deciding. */
  public readonly stats = { evaluated: 0, cached: 0, ms: 0 };
  private readonly cache = new Map<string, Decision>();
  private readonly admin;

  constructor(
    private readonly store: PolicyStore,
    private readonly evaluator: PolicyEvaluator,
    private readonly account: string,
    private readonly region: string,
    private readonly onDenied: (denial: Denial) => void,
  ) {
    this.admin = [evaluator.load('AdministratorAccess', AWS_MANAGED_POLICIES.AdministratorAccess, 'identity')];
  }

  /** Forgets every decision: policies changed (an app deployed into the running engine). */
  public clearCache(): void {
    this.cache.clear();
  }

  /** The decision, from the cache when this call was decided before. */
  public decide(request: AuthorizationRequest): Decision {
    const started = performance.now();
    try {
      return this.decideUncounted(request);
    } finally {
      this.stats.ms += performance.now() - started;
    }
  }

  private decideUncounted(request: AuthorizationRequest): Decision {
    // The rest of the context (region, principal, the resource's tags) follows from the principal and the resource.
    const extra = request.context ? JSON.stringify(request.context) : '';
    const key = `${request.principal.arn}\0${request.action}\0${request.resource}\0${extra}`;
    const cached = this.cache.get(key);
    if (cached) {
      this.stats.cached++;
      return cached;
    }
    this.stats.evaluated++;
    const decision = this.evaluate(request, this.contextOf(request), true);
    this.cache.set(key, decision);
    return decision;
  }

  /** Undefined when allowed; else the denial, recorded (the caller drops or fails the call). */
  public check(request: AuthorizationRequest, service: DenyingService): Denial | undefined {
    const decision = this.decide(request);
    if (decision === 'Allowed') return undefined;
    const denial: Denial = {
      time: new Date(),
      principal: request.principal.arn,
      action: request.action,
      resource: request.resource,
      message: this.message(request, decision),
      service,
    };
    this.denials.push(denial);
    this.onDenied(denial);
    return denial;
  }

  /** Throws the service's access-denied error when the call is not allowed. */
  public require(request: AuthorizationRequest, service: Exclude<DenyingService, 'delivery'>): void {
    const denial = this.check(request, service);
    if (!denial) return;
    const { code, status } = DENIAL_ERRORS[service];
    throw new AwsError(code, denial.message, status);
  }

  private evaluate(request: AuthorizationRequest, context: Record<string, string>, withResourcePolicy: boolean): Decision {
    const { principal } = request;
    const identityPolicies = principal.admin ? this.admin
      : principal.roleArn ? this.store.roles.get(principal.roleArn)?.policies ?? [] : [];
    const resourcePolicy = withResourcePolicy ? this.store.resourcePolicies.get(PolicyStore.ownerArn(request.resource)) : undefined;
    return this.evaluator.decide({
      principal: principal.arn, action: request.action, resource: request.resource, account: this.account, context, identityPolicies, resourcePolicy,
    });
  }

  /** What AWS knows of every request: transport, principal, region, the resource's tags. */
  private contextOf(request: AuthorizationRequest): Record<string, string> {
    const context: Record<string, string> = {
      // Handlers reach AWS over HTTPS: policies that deny `aws:SecureTransport: false` must not bite locally.
      'aws:SecureTransport': 'true',
      'aws:RequestedRegion': this.region,
      ...request.context,
    };
    if (!request.principal.service) {
      context['aws:PrincipalArn'] = request.principal.roleArn ?? request.principal.arn;
      context['aws:PrincipalAccount'] = this.account;
    }
    const tags = this.store.tags.get(PolicyStore.ownerArn(request.resource));
    for (const [key, value] of Object.entries(tags ?? {})) context[`aws:ResourceTag/${key}`] = value;
    return context;
  }

  /** AWS's wording: which kind of policy failed to allow, or denied explicitly. */
  private message(request: AuthorizationRequest, decision: Decision): string {
    const head = `User: ${request.principal.arn} is not authorized to perform: ${request.action} on resource: ${request.resource}`;
    const context = this.contextOf(request);
    if (decision === 'ExplicitlyDenied') {
      const identityDenies = !request.principal.service && this.evaluate(request, context, false) === 'ExplicitlyDenied';
      return `${head} with an explicit deny in ${identityDenies ? 'an identity-based' : 'a resource-based'} policy`;
    }
    const resourceOnly = request.principal.service
      || (request.action.startsWith('kms:') && this.evaluate(request, context, false) === 'Allowed');
    return `${head} because no ${resourceOnly ? 'resource-based' : 'identity-based'} policy allows the ${request.action} action`;
  }
}
