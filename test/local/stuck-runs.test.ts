/**
 * Stuck-run detection end to end on the local engine, on its schedule: the orchestrator's
 * EventBridge schedule (every stuckAfter / 3) fires on the engine's clock, the bundled stuck-runs
 * handler sweeps the open-run index and sends its "Orchestrator Run Stuck" event with PutEvents, and
 * a rule the user wrote catches it. The test advances the clock instead of waiting minutes; function
 * code sees the advanced time too, so the run really is "three minutes old".
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';
import { ActivityStage, Orchestrator, Workflow } from '../../src';

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'stuck-runs', 'index.js'));
const maybe = bundled ? describe : describe.skip;

/** Hands the work off and never reports: the parallel stage waits (up to its 1-hour timeout). */
const NEVER_ANSWERS = 'exports.handler = async () => ({ state: "In Progress" });';

maybe('stuck-run detection on the local engine', () => {
  let engine: LocalEngine;
  const MINUTE = 60_000;

  beforeAll(async () => {
    const stack = newStack('Stuck');
    const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'stuck', activities: ['Wait'], stuckAfter: Duration.minutes(3) });
    new Workflow(stack, 'Wf', { orchestrator, activities: ['Wait'], workflowName: 'wait' });
    const silent = inlineFunction(stack, 'Silent', NEVER_ANSWERS, { functionName: 'stuck-silent' });
    orchestrator.activity('Wait').addPlugin(silent, { pluginName: 'silent', stage: ActivityStage.PARALLEL });
    // What a user writes: catch the orchestrator's stuck-run events (here into a queue).
    const alerts = new sqs.Queue(stack, 'StuckAlerts');
    new events.Rule(stack, 'OnStuckRun', {
      eventPattern: { source: ['cdk-orchestrator'], detailType: ['Orchestrator Run Stuck'] },
      targets: [new targets.SqsQueue(alerts)],
    });
    engine = await startTestEngine(stack);
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('a run not finished after stuckAfter is reported once, on the schedule, to the user\'s rule', async () => {
    const sweeper = engine.assembly.functions.find((f) => f.path === 'Stuck/Orch/Handlers/StuckRuns')!.name;
    const sweeps = () => engine.counters().functions[sweeper]?.invocations ?? 0;
    const alerts = () => engine.queueMessages('Stuck/StuckAlerts').map((m) => JSON.parse(m.body));
    engine.runWorkflow('wait', { uid: 'late-1' });
    await eventually(async () => engine.counters().functions['stuck-silent']?.invocations
      && (await engine.statusDocument('late-1', 'wait'))?.activities.Wait.async.status.state === 'In Progress', 30_000, 'the parallel stage to wait');

    // stuckAfter 3 minutes: the sweep runs every minute. After 2 minutes the run is not stuck yet.
    for (let minute = 1; minute <= 2; minute++) {
      await engine.clock.advance(MINUTE);
      await engine.idle();
    }
    expect(sweeps()).toBe(2);
    expect(alerts()).toEqual([]);

    for (let minute = 3; minute <= 5; minute++) {
      await engine.clock.advance(MINUTE);
      await engine.idle();
    }
    expect(sweeps()).toBe(5);
    const reported = alerts();
    // Reported once: the sweeps after the first report do not report it again.
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({
      'source': 'cdk-orchestrator',
      'detail-type': 'Orchestrator Run Stuck',
      'detail': { uid: 'late-1', workflow: 'wait', orchestrator: 'stuck', state: 'In Progress', stuckAfterSeconds: 180 },
    });
    // The handler's clock is the engine's: the report is at least 3 minutes after the run started.
    const { startedAt, reportedAt } = reported[0].detail;
    expect(Date.parse(reportedAt) - Date.parse(startedAt)).toBeGreaterThanOrEqual(3 * MINUTE);
  });
});
