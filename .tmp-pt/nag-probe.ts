import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildExampleApp } from '../examples/app';
const app = new App();
buildExampleApp(app);
const pack = new AwsSolutionsChecks(app);
const report = pack.validateScope(app);
for (const v of report.violations) console.log(v.ruleName, v.severity, '\n   ', v.violatingResources.map((r: any) => r.constructPath ?? r.resourceLogicalId).join('\n    '));
void Validations;
