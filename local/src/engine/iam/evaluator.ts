/**
 * The IAM policy evaluator, loaded only when installed: `@cloud-copilot/iam-simulate` with
 * `@cloud-copilot/iam-policy`. Their licence is AGPL-3.0-or-later, so they are optional
 * dependencies of cdk-orchestrator-local (never of the construct library, never bundled): with
 * them the engine decides every call as AWS would; without them it authorizes nothing.
 */

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/** A template policy checked once with its validator (identity or resource), named for explanations. */
export interface LoadedPolicy {
  readonly name: string;
  /** The evaluator's validated form (passed back to it on every decision). */
  readonly validated: unknown;
  /** What the validator found wrong (the evaluator then ignores nothing: AWS would have rejected the deployment). */
  readonly errors: string[];
}

export interface DecisionRequest {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly account: string;
  readonly context: Record<string, string | string[]>;
  readonly identityPolicies: readonly LoadedPolicy[];
  readonly resourcePolicy?: LoadedPolicy;
}

export interface PolicyEvaluator {
  load(name: string, document: unknown, kind: 'identity' | 'resource'): LoadedPolicy;
  decide(request: DecisionRequest): Decision;
}

/** `authorization: 'enforce'` without the evaluator installed. */
export class AuthorizationUnavailableError extends Error {
  constructor(cause: string) {
    super('authorization: \'enforce\' needs the optional packages @cloud-copilot/iam-simulate and @cloud-copilot/iam-policy '
      + `(AGPL-3.0-or-later), which are not installed next to cdk-orchestrator-local: npm install --save-dev @cloud-copilot/iam-simulate @cloud-copilot/iam-policy (${cause})`);
    this.name = 'AuthorizationUnavailableError';
  }
}

let cached: PolicyEvaluator | string | undefined;

/** The evaluator, or why it cannot be loaded. */
export function loadPolicyEvaluator(): PolicyEvaluator | string {
  if (cached !== undefined) return cached;
  try {
    // Guarded, dynamic: optional dependencies (AGPL, see the file comment), absent in installs that skip them.
    // eslint-disable-next-line @typescript-eslint/no-require-imports, import/no-extraneous-dependencies
    const simulate = require('@cloud-copilot/iam-simulate');
    // eslint-disable-next-line @typescript-eslint/no-require-imports, import/no-extraneous-dependencies
    const policy = require('@cloud-copilot/iam-policy');
    cached = evaluatorOf(simulate, policy);
  } catch (e) {
    cached = (e as Error).message.split('\n')[0];
  }
  return cached;
}

function evaluatorOf(simulate: any, policy: any): PolicyEvaluator {
  return {
    load(name, document, kind) {
      const validate = kind === 'identity' ? policy.validateIdentityPolicy : policy.validateResourcePolicy;
      const validated = policy.createValidatedPolicy(document, validate, { name });
      return { name, validated, errors: validated.errors.map((e: any) => `${e.path}: ${e.message}`) };
    },
    decide(request) {
      // The unvalidated entry point: synchronous, and it takes what the validated one refuses
      // (e.g. `states:SendTaskSuccess` on the issuing state machine's ARN). The policies were
      // validated once, at load; the request is the engine's own.
      return simulate.runUnsafeSimulation({
        request: {
          principal: request.principal,
          action: request.action,
          resource: { resource: request.resource, accountId: request.account },
          contextVariables: request.context,
        },
        identityPolicies: request.identityPolicies.map((p) => ({ name: p.name, policy: p.validated })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: request.resourcePolicy?.validated,
      }, {}) as Decision;
    },
  };
}
