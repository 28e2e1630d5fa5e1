// cdk-nag for the construct tests: run the AwsSolutions pack the way an app does (a validation
// plugin of the app, during its one `synth()`), and list the acknowledgements the library made.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, IPolicyValidationPlugin, PolicyValidationPluginReport, Validations } from 'aws-cdk-lib';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** A new app that synthesizes to a temporary directory. */
export function newNagApp(): App {
  return new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-orchestrator-nag-')) });
}

export interface NagResult {
  readonly assembly: CloudAssembly;
  /** `<rule> at <construct path>`, one per violation (errors and warnings alike). */
  readonly violations: string[];
  /** The pack's own verdict. */
  readonly success: boolean;
  /** The app's validation report (`policy-validation-report.json`) lists the plugins that failed. */
  readonly failedPlugins: string[];
}

/**
 * Registers cdk-nag's AwsSolutions pack on `app` with `Validations.of(app).addPlugins(...)` and
 * synthesizes the app (once). cdk-nag 3's pack reads the construct tree from the validation context
 * (`appConstruct`), which aws-cdk-lib 2.257 does not provide yet: registered as it is, the pack only
 * reports that it could not run. So it is registered behind a plugin that hands it the app
 * (`validateScope(app)`, cdk-nag's documented direct entry point) at the same point of `synth()`,
 * after every construct was prepared and validated (when the library works out its IAM5
 * acknowledgements, src/private/nag.ts).
 */
export function synthWithAwsSolutions(app: App): NagResult {
  const checks = new AwsSolutionsChecks(app);
  let report: PolicyValidationPluginReport | undefined;
  const plugin: IPolicyValidationPlugin = {
    name: checks.name,
    validate: () => (report = checks.validateScope(app)),
  };
  Validations.of(app).addPlugins(plugin);
  // synth() prints the validation report on stderr, and when a plugin fails sets process.exitCode = 1
  // (for the CDK CLI), which would fail the test process: the result below says the same.
  const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  const exitCode = process.exitCode;
  let assembly: CloudAssembly;
  try {
    assembly = app.synth();
  } finally {
    quiet.mockRestore();
    process.exitCode = exitCode;
  }
  if (!report) throw new Error('the AwsSolutions pack did not run');
  const file = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'policy-validation-report.json'), 'utf-8'));
  const violations = report.violations.flatMap((violation) =>
    violation.violatingResources.map((resource) => `${violation.ruleName} at ${resource.constructPath ?? resource.resourceLogicalId}`));
  const failedPlugins = (file.pluginReports as { summary: { pluginName: string } }[]).map((entry) => entry.summary.pluginName);
  return { assembly, violations, success: report.success, failedPlugins };
}

/**
 * Every acknowledged cdk-nag rule under `scope` whose id starts with `pack` (AwsSolutions by default;
 * '' for every pack): construct path (without `/Resource`) -> rule ids, with references in ids
 * (`<Logical.Attr>`, `<referenceTo...>`; not `<AWS::...>`) written `<ref>`.
 */
export function acknowledgements(scope: IConstruct, pack = 'AwsSolutions-'): Record<string, string[]> {
  const found: Record<string, Set<string>> = {};
  const reasons: string[] = [];
  for (const construct of scope.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        if (!id.replace(/^annotation::/i, '').startsWith(pack)) continue;
        const key = construct.node.path.replace(/\/Resource$/, '');
        (found[key] ??= new Set()).add(id.replace(/^annotation::/i, '').replace(/<(?!AWS::)[^>]*>/g, '<ref>'));
        reasons.push(reason);
      }
    }
  }
  // Every acknowledgement says why, specifically.
  for (const reason of reasons) expect(reason.length).toBeGreaterThan(60);
  return Object.fromEntries(Object.keys(found).sort().map((key) => [key, [...found[key]].sort()]));
}
