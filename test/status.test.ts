/** The pure status module: every summary rule, transition and helper, without AWS. */
import {
  ActivityDocument, allowedPredecessors, asStatusDocument, buildPluginMessage, canTransition, deepEqual, describeFailure,
  isStageDone, messageAttributesFromMetadata, metadataDifferences, metadataEqual, newActivityDocument, newStatusDocument,
  PLUGIN_STATES, PluginEntry, PluginState, registeredView, resetForRerun, serializePluginMessage, snsEnvelope,
  StageDocument, stageFailure, State, StatusDocument, summarizeActivity, summarizeRun, summarizeStage, summarizeStates,
  trimMessage, unregisteredPendingEntries,
} from '../lambda/shared/status';

const NS = State.NOT_STARTED;
const IP = State.IN_PROGRESS;
const MC = State.MANDATORY_COMPLETED;
const C = State.COMPLETE;
const E = State.ERROR;
const OTE = State.OPTIONAL_TASK_ERROR;
const DNR = State.DO_NOT_RUN;

const entries = (states: PluginState[]): Record<string, PluginEntry> =>
  Object.fromEntries(states.map((state, i) => [`P${i}`, { state }]));

function stage(mandatory: PluginState[], optional: PluginState[] = [], stageState: State = IP): StageDocument {
  return {
    status: { state: stageState, ...(stageState === NS ? {} : { startTime: '2026-01-01T00:00:00.000Z' }) },
    mandatory: entries(mandatory),
    optional: entries(optional),
  };
}

test('the state strings are exactly the contract strings', () => {
  expect(Object.values(State).sort()).toEqual(
    ['Complete', 'Do Not Run', 'Error', 'In Progress', 'Mandatory Completed', 'Not Started', 'Optional Task Error']);
});

describe('entries that are not entries (bug 5)', () => {
  test('a null, string or state-less entry reads as Not Started, in summaries and in asStatusDocument', () => {
    const odd = { status: { state: IP, startTime: 'T' }, mandatory: { M: null, N: { state: C } }, optional: { O: 'x', P: {} } } as any;
    expect(summarizeStage(odd)).toBe(IP);
    const doc = asStatusDocument({ uid: 'u', workflow: 'W', activities: { A: { async: odd } } });
    expect(doc.activities.A.async.mandatory).toEqual({ M: { state: NS }, N: { state: C } });
    expect(doc.activities.A.async.optional).toEqual({ O: { state: NS }, P: { state: NS } });
    expect(summarizeStage(doc.activities.A.async)).toBe(IP);
  });
});

describe('summarizeStage', () => {
  test.each<[string, StageDocument, State]>([
    ['no plugins, not started -> Not Started', stage([], [], NS), NS],
    ['no plugins, started -> Complete', stage([], [], IP), C],
    ['a mandatory Error -> Error, whatever else is pending', stage([C, E, IP], [NS]), E],
    ['a mandatory Error -> Error even before the stage started', stage([E], [], NS), E],
    ['a mandatory Not Started in a started stage -> In Progress', stage([C, NS]), IP],
    ['a mandatory In Progress -> In Progress', stage([IP], [C]), IP],
    ['not started and no plugin moved -> Not Started', stage([NS, NS], [NS], NS), NS],
    ['not started but a plugin already reports -> In Progress', stage([NS, IP], [], NS), IP],
    ['all mandatory done, an optional Not Started -> Mandatory Completed', stage([C], [NS]), MC],
    ['all mandatory done, an optional In Progress -> Mandatory Completed', stage([C], [IP, C]), MC],
    ['an optional still pending wins over an optional Error', stage([C], [E, IP]), MC],
    ['all mandatory done, an optional Error -> Optional Task Error', stage([C], [E, C]), OTE],
    ['everything Complete -> Complete', stage([C, C], [C]), C],
    ['Do Not Run counts as done', stage([DNR, C], [DNR]), C],
    ['only optional plugins, pending -> Mandatory Completed', stage([], [NS, IP]), MC],
    ['only optional plugins, one failed -> Optional Task Error (never Error)', stage([], [E, C]), OTE],
  ])('%s', (_name, doc, expected) => {
    expect(summarizeStage(doc)).toBe(expected);
  });
});

describe('activity and run summaries', () => {
  test.each<[State[], State]>([
    [[C, C, C], C],
    [[C, MC, OTE], C],
    [[DNR, C, C], C],
    [[C, E, NS], E],
    [[IP, NS, NS], IP],
    [[C, NS, NS], IP],
    [[C, OTE, NS], IP],
    [[NS, NS, NS], NS],
    [[C, IP, E], E],
  ])('%j -> %s', (states, expected) => {
    expect(summarizeStates(states)).toBe(expected);
  });

  test('an activity summarizes its three stages in order', () => {
    const activity: ActivityDocument = { ...newActivityDocument(), pre: stage([C]), async: stage([C], [E]) };
    activity.pre.status.state = C;
    activity.async.status.state = OTE;
    expect(summarizeActivity(activity)).toBe(IP); // post not started yet
    activity.post.status.state = C;
    expect(summarizeActivity(activity)).toBe(C); // the optional failure does not fail the activity
  });

  test('a run summarizes its activities: any Error fails it, all done completes it', () => {
    const run = (...states: State[]) => Object.fromEntries(states.map((state, i) => [`A${i}`, { ...newActivityDocument(), status: { state } }]));
    expect(summarizeRun(run(C, NS))).toBe(IP);
    expect(summarizeRun(run(C, C))).toBe(C);
    expect(summarizeRun(run(C, E))).toBe(E);
    expect(summarizeRun(run(NS, NS))).toBe(NS);
  });

  test('isStageDone: Complete, Mandatory Completed, Optional Task Error and Do Not Run', () => {
    expect(Object.values(State).filter(isStageDone).sort()).toEqual([C, DNR, MC, OTE].sort());
  });
});

describe('plugin-entry transitions', () => {
  // from (row) -> to (column): Not Started -> anything; In Progress -> In Progress/Complete/Error/Do Not Run;
  // Complete, Error and Do Not Run are final.
  const allowed: Record<PluginState, PluginState[]> = {
    [NS]: [NS, IP, C, E, DNR],
    [IP]: [IP, C, E, DNR],
    [C]: [],
    [E]: [],
    [DNR]: [],
  };
  test.each(PLUGIN_STATES.flatMap((from) => PLUGIN_STATES.map((to) => [from, to] as const)))('%s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(allowed[from].includes(to));
    expect(allowedPredecessors(to).includes(from)).toBe(allowed[from].includes(to));
  });

  test('a missing entry counts as Not Started', () => {
    expect(canTransition(undefined, C)).toBe(true);
  });

  test('a late In Progress can never follow Complete or Error', () => {
    expect(allowedPredecessors(IP)).not.toContain(C);
    expect(allowedPredecessors(IP)).not.toContain(E);
  });
});

describe('newStatusDocument', () => {
  test('lists every activity Not Started and keeps the workflow in the metadata', () => {
    const doc = newStatusDocument({ uid: 'u1', workflow: 'W', metadata: { a: 1, workflow: 'ignored' }, activities: ['A', 'B'], now: 'T0', expiresAt: 99 });
    expect(doc.metadata).toEqual({ a: 1, workflow: 'W' });
    expect(doc.status.state).toBe(NS);
    expect(Object.keys(doc.activities)).toEqual(['A', 'B']);
    expect(summarizeActivity(doc.activities.A)).toBe(NS);
    expect(doc).toMatchObject({ createdAt: 'T0', updatedAt: 'T0', expiresAt: 99 });
    expect(doc.awaiting).toBeUndefined();
  });
});

describe('resetForRerun', () => {
  function failedRun(): StatusDocument {
    const doc = newStatusDocument({ uid: 'u', workflow: 'W', metadata: { a: 1 }, activities: ['A', 'B', 'Gone'], now: 'T0' });
    doc.activities.A = {
      status: { state: E, message: 'post: P1: boom' },
      pre: { status: { state: C, startTime: 'T1' }, mandatory: { P0: { state: C } }, optional: {} },
      async: { status: { state: MC, startTime: 'T2', token: 'old-token' }, mandatory: { M: { state: C } }, optional: { O: { state: IP } } },
      post: {
        status: { state: E, message: 'P1: boom', startTime: 'T3' },
        mandatory: { P0: { state: C }, P1: { state: E, message: 'boom', attempts: 3 } },
        optional: { O1: { state: E, message: 'meh' } },
      },
    };
    doc.activities.B.pre = { status: { state: OTE, startTime: 'T4' }, mandatory: {}, optional: { X: { state: E } } };
    doc.status.state = E;
    doc.awaiting = new Set(['A']);
    return doc;
  }

  test('keeps completed work and resets every Error and Optional Task Error to Not Started', () => {
    const reset = resetForRerun(failedRun(), { activities: ['A', 'B'], now: 'T9' });
    const a = reset.activities.A;
    expect(a.pre).toEqual({ status: { state: C, startTime: 'T1' }, mandatory: { P0: { state: C } }, optional: {} });
    expect(a.post.status).toEqual({ state: NS });
    expect(a.post.mandatory.P0.state).toBe(C);
    expect(a.post.mandatory.P1).toEqual({ state: NS }); // message and attempts cleared
    expect(a.post.optional.O1.state).toBe(NS);
    expect(reset.activities.B.pre.status.state).toBe(NS);
    expect(reset.activities.B.pre.optional.X.state).toBe(NS);
  });

  test('summarizes activities and run again, drops tokens and keeps awaiting only for a stage still settling', () => {
    const reset = resetForRerun(failedRun(), { activities: ['A', 'B'], now: 'T9' });
    expect(reset.activities.A.status).toEqual({ state: IP }); // done and not-started stages mixed
    expect(reset.status.state).toBe(IP);
    expect(reset.activities.A.async.status.token).toBeUndefined();
    expect(reset.activities.A.async.status.state).toBe(MC);
    expect(reset.awaiting).toEqual(new Set(['A']));
    expect(reset.updatedAt).toBe('T9');
    expect(reset.createdAt).toBe('T0');
  });

  test('adds activities the workflow gained, drops the ones it lost, and overrides metadata on request', () => {
    const reset = resetForRerun(failedRun(), { activities: ['A', 'B', 'New'], now: 'T9', metadata: { a: 2 } });
    expect(Object.keys(reset.activities).sort()).toEqual(['A', 'B', 'New']);
    expect(summarizeActivity(reset.activities.New)).toBe(NS);
    expect(reset.metadata).toEqual({ a: 2, workflow: 'W' });
  });

  test('a parallel stage Mandatory Completed with an optional Error goes back to Not Started (bug 4)', () => {
    const doc = newStatusDocument({ uid: 'u', workflow: 'W', activities: ['A'], now: 'T0' });
    for (const key of ['pre', 'post'] as const) doc.activities.A[key].status = { state: C, startTime: 'T1' };
    doc.activities.A.async = { status: { state: MC, startTime: 'T2' }, mandatory: { M: { state: C } }, optional: { O: { state: E, message: 'no' } } };
    doc.activities.A.status.state = C;
    doc.status.state = C;
    doc.awaiting = new Set(['A']);
    const reset = resetForRerun(doc, { activities: ['A'], now: 'T9' });
    expect(reset.activities.A.async).toEqual({ status: { state: NS }, mandatory: { M: { state: C } }, optional: { O: { state: NS } } });
    expect(reset.activities.A.status.state).toBe(IP);
    expect(reset.status.state).toBe(IP);
    expect(reset.awaiting).toBeUndefined();
  });

  test('attempts of a plugin left pending by the last run do not survive the reset (bug 2)', () => {
    const doc = failedRun();
    doc.activities.A.post.mandatory.P2 = { state: NS, attempts: 1, message: 'Error: boom' };
    doc.activities.A.post.mandatory.P3 = { state: IP, attempts: 2 };
    const reset = resetForRerun(doc, { activities: ['A', 'B'], now: 'T9' });
    expect(reset.activities.A.post.mandatory.P2).toEqual({ state: NS });
    expect(reset.activities.A.post.mandatory.P3).toEqual({ state: IP });
  });

  test('a run that completed stays complete (nothing to redo) and the input is not mutated', () => {
    const done = newStatusDocument({ uid: 'u', workflow: 'W', activities: ['A'], now: 'T0' });
    for (const key of ['pre', 'async', 'post'] as const) done.activities.A[key].status.state = C;
    done.activities.A.status.state = C;
    done.status.state = C;
    const before = structuredClone(done);
    expect(resetForRerun(done, { activities: ['A'], now: 'T1' }).status.state).toBe(C);
    expect(done).toEqual(before);
  });
});

describe('metadataEqual', () => {
  test('ignores key order at every depth', () => {
    expect(metadataEqual({ workflow: 'W', a: 1, nested: { x: 1, y: [1, { p: 1, q: 2 }] } },
      { nested: { y: [1, { q: 2, p: 1 }], x: 1 }, a: 1, workflow: 'W' })).toBe(true);
  });
  test.each([
    [{ a: 1 }, { a: 2 }],
    [{ a: 1 }, { a: 1, b: 2 }],
    [{ a: [1, 2] }, { a: [2, 1] }],
    [{ a: '1' }, { a: 1 }],
    [{ a: null }, { a: {} }],
  ])('%j differs from %j', (a, b) => {
    expect(metadataEqual(a, b)).toBe(false);
  });
  test('names the keys that differ', () => {
    expect(metadataDifferences({ workflow: 'W', a: 1, b: 2 }, { workflow: 'W', a: 1, b: 3, c: 4 })).toEqual(['b', 'c']);
  });
  test('deepEqual compares sets by content', () => {
    expect(deepEqual(new Set(['a', 'b']), new Set(['b', 'a']))).toBe(true);
    expect(deepEqual(new Set(['a']), new Set(['b']))).toBe(false);
  });
});

describe('trimMessage', () => {
  test('keeps short messages', () => {
    expect(trimMessage('plugin failed')).toBe('plugin failed');
  });
  test('cuts a 2 KB message to 180 characters ending in an ellipsis', () => {
    const trimmed = trimMessage('x'.repeat(2048));
    expect(trimmed).toHaveLength(180);
    expect(trimmed.endsWith('…')).toBe(true);
  });
  test('accepts errors and other values, collapsing whitespace', () => {
    expect(trimMessage(new Error('bad\n  thing'))).toBe('bad thing');
    expect(trimMessage({ code: 42 })).toBe('{"code":42}');
  });
});

describe('stageFailure', () => {
  test('names the first failing mandatory plugin (by name) with its message', () => {
    const doc: StageDocument = {
      status: { state: IP },
      mandatory: { Zeta: { state: E, message: 'z' }, Alpha: { state: E, message: 'a' }, Mid: { state: C } },
      optional: { Aaa: { state: E, message: 'optional' } },
    };
    expect(stageFailure(doc)).toEqual({ plugin: 'Alpha', message: 'a' });
    expect(describeFailure(stageFailure(doc)!)).toBe('Alpha: a');
  });
  test('is undefined when no mandatory plugin failed (optional failures do not count)', () => {
    expect(stageFailure(stage([C], [E]))).toBeUndefined();
  });
  test('describeFailure is trimmed to 180 characters', () => {
    expect(describeFailure({ plugin: 'P', message: 'm'.repeat(500) })).toHaveLength(180);
  });
});

describe('registered plugins', () => {
  const doc: StageDocument = {
    status: { state: IP },
    mandatory: { Kept: { state: C }, Removed: { state: NS }, RemovedDone: { state: C }, Moved: { state: NS } },
    optional: { Moved: { state: NS } },
  };
  const registered = [{ name: 'Kept', kind: 'mandatory' as const }, { name: 'Moved', kind: 'optional' as const }];

  test('the registered view leaves out entries of plugins no longer registered with that kind', () => {
    const view = registeredView(doc, registered);
    expect(Object.keys(view.mandatory)).toEqual(['Kept']);
    expect(Object.keys(view.optional)).toEqual(['Moved']);
    expect(summarizeStage(doc)).toBe(IP);
    expect(summarizeStage(view)).toBe(MC);
  });
  test('stale pending entries are listed for removal; finished ones are kept as history', () => {
    expect(unregisteredPendingEntries(doc, registered)).toEqual([{ name: 'Removed', kind: 'mandatory' }, { name: 'Moved', kind: 'mandatory' }]);
  });
});

describe('plugin message', () => {
  const doc = newStatusDocument({ uid: 'u1', workflow: 'W', metadata: { region: 'EU', premium: 100, uid: 'spoofed' }, activities: ['A', 'B'], now: 'T0' });
  doc.activities.A.async.status = { state: IP, token: 'secret-token' };

  test('carries uid, workflow, activity, stage, run status, activities, now and the metadata; never the task token', () => {
    const message = buildPluginMessage(doc, { activity: 'A', stage: 'async', now: 'T5' });
    expect(message).toMatchObject({ uid: 'u1', workflow: 'W', activity: 'A', stage: 'async', status: { state: NS }, now: 'T5', region: 'EU', premium: 100 });
    expect(Object.keys(message.activities)).toEqual(['A', 'B']);
    expect(JSON.stringify(message)).not.toContain('secret-token');
  });

  test('a message too large for SNS is trimmed, marked truncated, and still delivered', () => {
    const big = structuredClone(doc);
    for (let i = 0; i < 3000; i++) big.activities.B.pre.mandatory[`Plugin-${i}`] = { state: C, message: 'x'.repeat(100) };
    const message = buildPluginMessage(big, { activity: 'A', stage: 'pre', now: 'T5' });
    const body = serializePluginMessage(message);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(262_144);
    expect(JSON.parse(body)).toMatchObject({ uid: 'u1', activity: 'A', truncated: true, activities: { B: { status: { state: NS } } } });
    expect(serializePluginMessage(buildPluginMessage(doc, { activity: 'A', stage: 'pre', now: 'T5' }))).not.toContain('truncated');
  });

  test('even metadata too large for SNS leaves a minimal message naming the run', () => {
    const huge = newStatusDocument({ uid: 'u1', workflow: 'W', metadata: { blob: 'x'.repeat(300_000) }, activities: ['A'], now: 'T0' });
    const body = JSON.parse(serializePluginMessage(buildPluginMessage(huge, { activity: 'A', stage: 'pre', now: 'T5' })));
    expect(body).toEqual({ uid: 'u1', workflow: 'W', activity: 'A', stage: 'pre', status: { state: NS }, now: 'T5', activities: {}, truncated: true });
  });

  test('message attributes: the first 10 scalar metadata fields, typed for filter policies', () => {
    const metadata: Record<string, unknown> = { 'workflow': 'W', 'str': 's', 'num': 1.5, 'bool': true, 'empty': '', 'obj': { a: 1 }, 'list': [1], 'bad name': 'x', 'AWS.x': 'y' };
    for (let i = 0; i < 12; i++) metadata[`f${i}`] = `v${i}`;
    const attributes = messageAttributesFromMetadata(metadata);
    expect(Object.keys(attributes)).toHaveLength(10);
    expect(attributes.workflow).toEqual({ DataType: 'String', StringValue: 'W' });
    expect(attributes.num).toEqual({ DataType: 'Number', StringValue: '1.5' });
    expect(attributes.bool).toEqual({ DataType: 'String', StringValue: 'true' });
    for (const skipped of ['empty', 'obj', 'list', 'bad name', 'AWS.x']) expect(attributes).not.toHaveProperty([skipped]);
  });

  test('the SNS envelope is what a subscribed Lambda receives', () => {
    const event = snsEnvelope({
      body: '{"a":1}',
      topicArn: 'arn:topic',
      subscriptionArn: 'arn:sub',
      messageId: 'm1',
      now: 'T5',
      attributes: { region: { DataType: 'String', StringValue: 'EU' } },
    });
    expect(event.Records[0]).toMatchObject({
      EventSource: 'aws:sns',
      EventSubscriptionArn: 'arn:sub',
      Sns: { Message: '{"a":1}', TopicArn: 'arn:topic', MessageId: 'm1', MessageAttributes: { region: { Type: 'String', Value: 'EU' } } },
    });
  });
});

test('asStatusDocument fills in what an old or hand-written item lacks', () => {
  const doc = asStatusDocument({ uid: 'u', workflow: 'W', activities: { A: { status: { state: C }, pre: { status: { state: 'bogus' } } } }, awaiting: new Set() });
  expect(doc.status.state).toBe(NS);
  expect(doc.metadata).toEqual({ workflow: 'W' });
  expect(doc.activities.A.status.state).toBe(C);
  expect(doc.activities.A.pre).toEqual({ status: { state: NS }, mandatory: {}, optional: {} });
  expect(doc.activities.A.post.status.state).toBe(NS);
  expect(doc).not.toHaveProperty('awaiting');
});
