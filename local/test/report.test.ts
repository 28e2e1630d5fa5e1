/**
 * `--report`: the page of a real run (two mandatory PARALLEL plugins that complete, one optional
 * that fails) opened in headless Chromium (Debian's `chromium`, no network, a fresh profile): the
 * screenshot shows one bar per plugin, the failed plugin and its stage in red.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { colourBands, decodePng } from './support/png';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { inlineFunction, newStack } from '../../test/local/support';
import { DYNAMODB_LOCAL_ENDPOINT } from '../../test/support/dynamodb-endpoint';
import { LocalEngine, renderReport, reportBars } from '../src';

const OK = 'exports.handler = async () => ({});';
const FAILS = 'exports.handler = async () => { throw new Error("flaky service down"); };';
const CHROMIUM = ['chromium', 'chromium-browser'].find((c) => !spawnSync(c, ['--version']).error);
const BLUE: [number, number, number] = [0x1e, 0x88, 0xe5];
const RED: [number, number, number] = [0xe5, 0x39, 0x35];

describe('--report run.html', () => {
  let page: string;
  let bars: ReturnType<typeof reportBars>;

  beforeAll(async () => {
    const stack = newStack('Report');
    const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'report' });
    new Workflow(stack, 'Flow', { orchestrator, activities: ['Step1'], workflowName: 'flow' });
    const step1 = orchestrator.activity('Step1');
    for (const [id, code, mandatory] of [['Ok1', OK, true], ['Ok2', OK, true], ['Flaky', FAILS, false]] as const) {
      const fn = inlineFunction(stack, id, code, { timeout: Duration.seconds(5) });
      step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: id, mandatory });
    }
    const engine = new LocalEngine({ app: stack, dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], asyncRetryDelaysMs: [10, 10] });
    await engine.start();
    try {
      const input = { uid: 'report-1', metadata: {} };
      const result = await engine.runWorkflow('flow', input).result();
      await engine.idle();
      const statusDocument = await engine.statusDocument('report-1', 'flow');
      bars = reportBars(engine.events);
      page = renderReport({ workflow: 'flow', input, result, events: engine.events, statusDocument, counters: engine.counters() });
    } finally {
      await engine.stop();
    }
  }, 120_000);

  test('the page is self-contained: no script, no external reference', () => {
    expect(page).not.toMatch(/<script|<link|src=|https?:\/\//);
    expect(page).toContain('default-src \'none\'');
  });

  test('one bar per plugin; the failed optional plugin and its stage are marked', () => {
    const plugins = bars.filter((b) => b.kind === 'plugin');
    expect(plugins.map((b) => [b.label, b.state]).sort()).toEqual([
      ['Step1 / async / Flaky', 'Error'], ['Step1 / async / Ok1', 'Complete'], ['Step1 / async / Ok2', 'Complete'],
    ]);
    expect(bars.find((b) => b.kind === 'stage' && b.label === 'Step1 / async')?.state).toBe('Optional Task Error');
    expect(page.match(/data-failed="true"/g)).toHaveLength(2);
  });

  test('headless Chromium shows two blue plugin bars and two red failed bars', () => {
    if (!CHROMIUM) throw new Error('Chromium is not installed: `sudo apt-get install -y chromium` (.ci/run installs it)');
    const dir = mkdtempSync(join(tmpdir(), 'report-'));
    writeFileSync(join(dir, 'run.html'), page);
    const screenshot = join(dir, 'shot.png');
    const run = spawnSync(CHROMIUM!, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${join(dir, 'profile')}`, '--hide-scrollbars',
      '--window-size=1400,1000', `--screenshot=${screenshot}`, `file://${join(dir, 'run.html')}`,
    ], { encoding: 'utf8', timeout: 60_000 });
    if (run.status !== 0) throw new Error(`chromium exited ${run.status}: ${run.stderr}`);
    const image = decodePng(readFileSync(screenshot));
    expect(image.width).toBe(1400);
    expect(colourBands(image, BLUE, 4)).toBe(2);
    expect(colourBands(image, RED, 4)).toBe(2);
  }, 90_000);
});
