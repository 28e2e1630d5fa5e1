// Every rule pack a regulated team runs, over one synth of an app: cdk-nag's AwsSolutions,
// Serverless, NIST 800-53 R5, HIPAA Security and PCI DSS 3.2.1 packs (each through `validateScope`,
// see nag-util.ts) and AWS Control Tower's proactive controls (cfn-guard rules shipped in
// @cdklabs/cdk-validator-cfnguard, which reads the synthesized templates).
import * as fs from 'fs';
import * as path from 'path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { App, IPolicyValidationPlugin, PolicyValidationPluginReport, Validations } from 'aws-cdk-lib';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks, ServerlessChecks } from 'cdk-nag';

export const PACKS = ['AwsSolutions', 'Serverless', 'NIST.800.53.R5', 'HIPAA.Security', 'PCI.DSS.321', 'ControlTower'] as const;
export type Pack = typeof PACKS[number];

export interface PacksResult {
  readonly assembly: CloudAssembly;
  /** Per pack, `<rule> at <construct path or stack/logical id>`, one per violating resource. */
  readonly violations: Record<Pack, string[]>;
  /** Plugins the app's validation report lists as failed to run (not: found violations). */
  readonly pluginErrors: string[];
}

/** Runs the five cdk-nag packs and the Control Tower cfn-guard rules during the app's one `synth()`. */
export function synthWithAllPacks(app: App): PacksResult {
  const reports: Partial<Record<Pack, PolicyValidationPluginReport>> = {};
  const nag: [Pack, { readonly name: string; validateScope(scope: App): PolicyValidationPluginReport }][] = [
    ['AwsSolutions', new AwsSolutionsChecks(app)],
    ['Serverless', new ServerlessChecks(app)],
    ['NIST.800.53.R5', new NIST80053R5Checks(app)],
    ['HIPAA.Security', new HIPAASecurityChecks(app)],
    ['PCI.DSS.321', new PCIDSS321Checks(app)],
  ];
  const plugins: IPolicyValidationPlugin[] = nag.map(([pack, checks]) => ({
    name: checks.name,
    validate: () => (reports[pack] = checks.validateScope(app)),
  }));
  const guard = new CfnGuardValidator();
  plugins.push({ name: guard.name, validate: (context) => (reports.ControlTower = guard.validate(context)) });
  Validations.of(app).addPlugins(...plugins);
  const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  const exitCode = process.exitCode;
  let assembly: CloudAssembly;
  try {
    assembly = app.synth();
  } finally {
    quiet.mockRestore();
    process.exitCode = exitCode;
  }
  const violations = {} as Record<Pack, string[]>;
  for (const pack of PACKS) {
    const report = reports[pack];
    if (!report) throw new Error(`the ${pack} pack did not run`);
    violations[pack] = report.violations.flatMap((violation) => violation.violatingResources.map((resource) =>
      `${violation.ruleName} at ${resource.constructPath ?? `${path.basename(resource.templatePath ?? '')}/${resource.resourceLogicalId}`}`)).sort();
  }
  const file = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'policy-validation-report.json'), 'utf-8'));
  const pluginErrors = (file.pluginReports as { summary: { pluginName: string; metadata?: unknown }; conditions?: unknown[] }[])
    .filter((entry) => (entry as any).summary.status === 'failure' && (entry as any).violations === undefined)
    .map((entry) => entry.summary.pluginName);
  return { assembly, violations, pluginErrors };
}
