// What the deploy-time plugin registrations (`Custom::AWS`, aws-cdk-lib's AwsCustomResource) run
// with: one role and one log group per stack for the stack's AwsCustomResource provider function,
// instead of the provider's default role with the AWSLambdaBasicExecutionRole managed policy
// (cdk-nag AwsSolutions-IAM4). Not part of the public API. DESIGN.md "Deploy-time plugin registration".
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeInlinePolicies, ComplianceSettings, RESERVED_CONCURRENCY_REASON, VPC_ENI_WILDCARD } from './compliance';
import { acknowledgeRule, acknowledgeWildcards } from './nag';
import { handlerLogGroupName } from './naming';
import { DEFAULT_LOG_RETENTION, DEFAULT_REMOVAL_POLICY } from '../defaults';

const PROVIDER_ID = 'CdkOrchestratorRegistrationProvider';

export interface RegistrationProvider {
  /** Role of the provider function: writes to `logGroup` only; each registration attaches its own policy. */
  readonly role: iam.IRole;
  readonly logGroup: logs.ILogGroup;
}

/**
 * The stack's one provider role and log group, created by its first registration; with the settings
 * of that registration's orchestrator (docs/COMPLIANCE.md): its key, log retention and VPC.
 */
export function registrationProvider(scope: IConstruct, settings?: ComplianceSettings): RegistrationProvider {
  const stack = Stack.of(scope);
  const existing = stack.node.tryFindChild(PROVIDER_ID) as RegistrationProviderConstruct | undefined;
  return existing ?? new RegistrationProviderConstruct(stack, PROVIDER_ID, settings);
}

class RegistrationProviderConstruct extends Construct implements RegistrationProvider {
  public readonly role: iam.IRole;
  public readonly logGroup: logs.ILogGroup;

  constructor(scope: Construct, id: string, settings?: ComplianceSettings) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: settings?.logRetention ?? DEFAULT_LOG_RETENTION,
      removalPolicy: settings?.removalPolicy ?? DEFAULT_REMOVAL_POLICY,
      // Under the orchestrator's key, named so that the key policy's CloudWatch Logs statement covers it.
      ...(settings?.encryptionKey
        ? { encryptionKey: settings.encryptionKey, logGroupName: handlerLogGroupName(this, settings.orchestratorName, 'registration-provider') }
        : {}),
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cdk-orchestrator plugin registrations (AwsCustomResource provider of this stack)',
    });
    this.logGroup.grantWrite(role);
    if (settings?.vpc) {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...VPC_ENI_WILDCARD.actions], resources: ['*'] }));
      acknowledgeWildcards(role, [VPC_ENI_WILDCARD]);
    }
    acknowledgeInlinePolicies(role);
    this.role = role;
  }
}

/**
 * cdk-nag findings on aws-cdk-lib's AwsCustomResource provider function that the library cannot
 * fix: call after creating an AwsCustomResource in `scope`'s stack.
 */
export function acknowledgeProviderFunction(scope: IConstruct): void {
  // SingletonFunction id: `lambdaPurpose` ('AWS') + the provider's UUID without dashes.
  const id = `AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`;
  const provider = Stack.of(scope).node.tryFindChild(id);
  if (!(provider instanceof lambda.Function) || acknowledgedProviders.has(provider)) return;
  acknowledgedProviders.add(provider);
  acknowledgeRule(provider, 'AwsSolutions-L1',
    'aws-cdk-lib\'s AwsCustomResource provider (deploy-time plugin registration): aws-cdk-lib picks its runtime '
    + '(lambda.determineLatestNodeRuntime: the newest Node.js runtime it knows for the region, nodejs22.x when the region is unknown) '
    + 'and offers no runtime option; the function runs only during deployments');
  acknowledgeRule(provider, 'Serverless-LambdaLatestVersion',
    'aws-cdk-lib\'s AwsCustomResource provider (deploy-time plugin registration): aws-cdk-lib picks its runtime and offers no runtime option');
  acknowledgeRule(provider, 'Serverless-LambdaTracing',
    'aws-cdk-lib\'s AwsCustomResource provider (deploy-time plugin registration) offers no tracing option; it makes one DynamoDB call per '
    + 'registration during deployments, logged in its log group');
  const dlq = 'aws-cdk-lib\'s AwsCustomResource provider is invoked by CloudFormation during deployments only, and reports every outcome '
    + 'to CloudFormation itself: a failed registration fails (and rolls back) the deployment, so an event in a dead-letter queue would have no one to act on it';
  for (const pack of ['Serverless', 'NIST.800.53.R5', 'HIPAA.Security']) acknowledgeRule(provider, `${pack}-LambdaDLQ`, dlq);
  for (const pack of ['NIST.800.53.R5', 'HIPAA.Security']) acknowledgeRule(provider, `${pack}-LambdaConcurrency`, RESERVED_CONCURRENCY_REASON);
}

const acknowledgedProviders = new WeakSet<lambda.Function>();
