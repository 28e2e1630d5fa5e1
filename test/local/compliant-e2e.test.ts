/**
 * The compliant configuration (docs/COMPLIANCE.md: encryptionKey, vpc, alarmTopic, logRetention
 * ONE_YEAR, backupPlan) on the local engine: a VPC changes nothing locally, and the key, the
 * dead-letter queues and the Lambda destinations keep runs working — a PARALLEL plugin that succeeds
 * and one that fails report through plugin-outcome (itself asynchronously invoked, with its DLQ).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { inlineFunction, newStack, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';
import { ActivityStage, Orchestrator, Workflow } from '../../src';

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));
const maybe = bundled ? describe : describe.skip;

maybe('compliant configuration on the local engine', () => {
  let engine: LocalEngine;

  beforeAll(async () => {
    const stack = newStack('Compliant');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const orchestrator = new Orchestrator(stack, 'Orch', {
      orchestratorName: 'compliant',
      activities: ['Good', 'Bad'],
      encryptionKey: key,
      vpc: new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }),
      alarmTopic: new sns.Topic(stack, 'Alarms', { masterKey: key }),
      logRetention: logs.RetentionDays.ONE_YEAR,
      backupPlan: backup.BackupPlan.daily35DayRetention(stack, 'Backups'),
    });
    orchestrator.activity('Good').addPlugin(inlineFunction(stack, 'Enrich', 'exports.handler = async () => ({ ok: true });'),
      { stage: ActivityStage.PARALLEL, pluginName: 'enrich' });
    orchestrator.activity('Bad').addPlugin(inlineFunction(stack, 'Broken', 'exports.handler = async () => { throw new Error("backend unavailable"); };'),
      { stage: ActivityStage.PARALLEL, pluginName: 'broken' });
    new Workflow(stack, 'WfGood', { orchestrator, activities: ['Good'], workflowName: 'good' });
    new Workflow(stack, 'WfBad', { orchestrator, activities: ['Bad'], workflowName: 'bad' });
    engine = await startTestEngine(stack);
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('a run whose parallel plugin succeeds: SUCCEEDED, plugin Complete', async () => {
    const result = await engine.runWorkflow('good', { uid: 'c-ok', metadata: { workflow: 'good' } }).result();
    await engine.idle();
    expect(result.status).toBe('SUCCEEDED');
    const item = await engine.statusDocument('c-ok', 'good');
    expect(item!.status.state).toBe('Complete');
    expect(item!.activities.Good.async.mandatory.enrich.state).toBe('Complete');
  }, 60_000);

  test('a run whose mandatory parallel plugin fails: FAILED with PluginFailed, reported through the on-failure destination', async () => {
    const result = await engine.runWorkflow('bad', { uid: 'c-fail', metadata: { workflow: 'bad' } }).result();
    await engine.idle();
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('PluginFailed');
    const item = await engine.statusDocument('c-fail', 'bad');
    expect(item!.status.state).toBe('Error');
    expect(item!.activities.Bad.async.mandatory.broken.message).toBe('Error: backend unavailable (after 3 attempts)');
  }, 60_000);
});
