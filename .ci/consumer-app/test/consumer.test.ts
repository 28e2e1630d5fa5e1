import { LocalEngine } from 'cdk-orchestrator-local';

// `npx cdk synth` first; jest.config.js starts one DynamoDB Local for all test files.
describe('Onboarding on the local engine', () => {
  const engine = new LocalEngine({ app: 'cdk.out', asyncRetryDelaysMs: [10, 10] });

  beforeAll(() => engine.start(), 60_000);
  afterAll(() => engine.stop());

  test('runs to Complete; the optional plugin that fails leaves its stage Optional Task Error', async () => {
    const result = await engine.runWorkflow('Onboarding', { uid: 'app-1', metadata: { customer: 'ACME' } }).result();
    expect(result.status).toBe('SUCCEEDED');
    await engine.idle();
    const doc = await engine.statusDocument('app-1', 'Onboarding');
    expect(doc?.status.state).toBe('Complete');
    expect(doc?.activities.Check.pre.status.state).toBe('Complete');
    // An ES module plugin (plugins/node/check.mjs) that imports the runtime's AWS SDK.
    expect(doc?.activities.Check.pre.mandatory.CheckApplication).toMatchObject({ state: 'Complete' });
    expect(doc?.activities.Rate.async.status.state).toBe('Optional Task Error');
    expect(doc?.activities.Rate.async.mandatory.Rate.state).toBe('Complete');
    expect(engine.counters().totals.invocations).toBeGreaterThan(0);
  }, 60_000);
});
