/**
 * What a DynamoDB Local start costs, with and without its class archive (`npx projen bench:dynamodb`;
 * a script, not a test). Every engine without a shared database, every `cdk-orchestrator-local run`
 * and every jest run with the package's global setup starts one, and waits for it.
 *
 * Per start, in rounds that alternate the two ways (a new cache directory, so nothing from the
 * developer's own cache is used):
 * - answers: from the spawn until DynamoDB Local answers HTTP (startDynamoDbLocal resolves);
 * - first requests: then the requests an engine's start and its first run begin with (CreateTable
 *   with a stream, PutItem, a conditional UpdateItem, Query), one after another;
 * - JVM CPU: the Java process's CPU when those are answered (Linux /proc).
 * Printed: the medians of each way, the ratio archive / package jar, and what the archive cost once
 * (the session that recorded the classes, and the background writer's time until the archive was there).
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/dynamodb-start.ts
 *   options: --rounds N (default 5), --small (the build's smoke run: 1 round)
 * Exit code 1 when a start with the archive did not map it (checked where /proc tells).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bareDynamoDbClient, median, processCpuMs } from './bench-speed';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';
import { CLASS_ARCHIVE_ENV } from '../local/src/dynamodb-local-classes';

interface StartFigures { answersMs: number; firstRequestsMs: number; jvmCpuMs: number; mapped: boolean | undefined }

const TABLE = 'bench-start';

/** One start: DynamoDB Local launched, its first requests answered, then stopped. */
async function oneStart(archiveDir: string): Promise<StartFigures> {
  process.env[CLASS_ARCHIVE_ENV] = archiveDir;
  const started = performance.now();
  const db = await startDynamoDbLocal();
  const answered = performance.now();
  const client = bareDynamoDbClient(db.endpoint);
  try {
    const ok = client.ok;
    await ok('CreateTable', {
      TableName: TABLE,
      KeySchema: [{ AttributeName: 'uid', KeyType: 'HASH' }, { AttributeName: 'workflow', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'uid', AttributeType: 'S' }, { AttributeName: 'workflow', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
    const Key = { uid: { S: 'u-1' }, workflow: { S: 'w' } };
    await ok('PutItem', { TableName: TABLE, Item: { ...Key, status: { S: 'Not Started' } } });
    await ok('UpdateItem', {
      TableName: TABLE,
      Key,
      UpdateExpression: 'SET #s = :p',
      ConditionExpression: '#s = :n',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':p': { S: 'In Progress' }, ':n': { S: 'Not Started' } },
    });
    await ok('Query', { TableName: TABLE, KeyConditionExpression: 'uid = :u', ExpressionAttributeValues: { ':u': { S: 'u-1' } } });
    const done = performance.now();
    // Whether it mapped the archive (undefined where /proc cannot tell).
    const maps = existsSync(`/proc/${db.pid}/maps`) ? readFileSync(`/proc/${db.pid}/maps`, 'utf8') : undefined;
    const mapped = archiveDir === 'off' || maps === undefined ? undefined : readdirSync(archiveDir).some((key) => maps.includes(join(archiveDir, key, 'classes.jsa')));
    return { answersMs: answered - started, firstRequestsMs: done - answered, jvmCpuMs: processCpuMs(db.pid), mapped };
  } finally {
    client.close();
    await db.stop();
  }
}

/** Waits for the background writer: the archive in place and its lock gone. */
async function archiveWritten(root: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [key] = readdirSync(root);
    if (key && existsSync(join(root, key, 'classes.jsa')) && !existsSync(join(root, key, 'writing.lock'))) return;
    if (Date.now() > deadline) throw new Error(`no class archive was written in ${root}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const line = (label: string, figures: StartFigures[]) => {
  const m = (pick: (f: StartFigures) => number) => median(figures.map(pick));
  return { label, answers: m((f) => f.answersMs), first: m((f) => f.firstRequestsMs), cpu: m((f) => f.jvmCpuMs) };
};

async function main() {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, small: { type: 'boolean', default: false } } });
  const rounds = values.small ? 1 : Number(values.rounds);
  const root = mkdtempSync(join(tmpdir(), 'bench-class-archive-'));
  try {
    // Once: the session that records the classes, then the writer in the background.
    const recording = await oneStart(root);
    const stopped = performance.now();
    await archiveWritten(root);
    const writerMs = performance.now() - stopped;

    const plain: StartFigures[] = [];
    const archived: StartFigures[] = [];
    for (let round = 0; round < rounds; round++) {
      // Alternating which goes first, so a drift of the machine's speed falls on both.
      const order = round % 2 === 0 ? ['off', root] : [root, 'off'];
      for (const dir of order) (dir === 'off' ? plain : archived).push(await oneStart(dir));
    }
    const rows = [line('package jar', plain), line('class archive', archived)];
    const cell = (n: number) => `${n.toFixed(0).padStart(6)} ms`;
    console.log(`DynamoDB Local starts, median of ${rounds} each (2 ways alternating); a start = answers + first requests (CreateTable with a stream, PutItem, UpdateItem, Query)`);
    console.log(`${''.padEnd(15)}${'answers'.padStart(9)}  ${'first requests'.padStart(14)}  ${'JVM CPU'.padStart(9)}`);
    for (const row of rows) console.log(`${row.label.padEnd(15)}${cell(row.answers)}  ${cell(row.first).padStart(14)}  ${cell(row.cpu)}`);
    const [p, a] = rows;
    console.log(`ratio archive / package jar: answers ${(a.answers / p.answers).toFixed(2)}, answers + first requests ${((a.answers + a.first) / (p.answers + p.first)).toFixed(2)}, JVM CPU ${(a.cpu / p.cpu).toFixed(2)}`);
    console.log(`once per cache: the recording session answered after ${recording.answersMs.toFixed(0)} ms (JVM CPU ${recording.jvmCpuMs.toFixed(0)} ms); the background writer had the archive in place ${(writerMs / 1000).toFixed(1)} s after its stop`);
    const unmapped = archived.filter((f) => f.mapped === false).length;
    if (unmapped > 0) {
      console.error(`${unmapped} of ${archived.length} starts with the archive did not map it`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
