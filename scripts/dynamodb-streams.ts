/**
 * What a request costs DynamoDB Local on a table whose stream's first record came after many records
 * of other tables (`npx projen bench:dynamodb-streams`; a script, not a test). DynamoDB Local keeps
 * every stream record of every table in one SQLite table keyed by sequence number alone, and looks
 * for a stream's first record from the oldest record on (`MIN(SequenceNumber) ... WHERE StreamID=?`)
 * when it validates a request on a table with a stream and when it adds a stream record. A jest run's
 * shared DynamoDB Local outlives its test files, and each file's engine makes tables of its own.
 *
 * In one DynamoDB Local: table `early` is made and written 500 times; then `--records` records go to
 * table `heavy`; then table `late` is made and written once (its stream's first record). Then
 * `--requests` UpdateItem calls, and as many GetItem calls (20 at a time), go to `early` and to
 * `late`, alternately, `--rounds` times. Printed: DynamoDB Local's CPU per request on each (medians),
 * their ratio, and the extra CPU per record older than `late`'s first one.
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/dynamodb-streams.ts
 *   options: --records N (default 20000), --requests N (default 1000), --rounds N (default 3),
 *            --small (the build's smoke run: 2,000 records, 200 requests, 1 round)
 * Exit code 1 when a request failed, an option is not a positive integer, or /proc cannot tell
 * DynamoDB Local's CPU.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bareDynamoDbClient, median, positiveInteger, processCpuMs } from './bench-speed';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';

const LANES = 20;
/** Writes to `early` before the records of `heavy`. */
const EARLY_WRITES = 500;

async function main() {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '20000' },
      requests: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '3' },
      small: { type: 'boolean', default: false },
    },
  });
  const records = values.small ? 2000 : positiveInteger('records', values.records!);
  const requests = values.small ? 200 : positiveInteger('requests', values.requests!);
  const rounds = values.small ? 1 : positiveInteger('rounds', values.rounds!);
  const db = await startDynamoDbLocal();
  const client = bareDynamoDbClient(db.endpoint, LANES);
  try {
    if (Number.isNaN(processCpuMs(db.pid))) throw new Error('DynamoDB Local\'s CPU cannot be read here (/proc)');
    const table = (name: string) => client.ok('CreateTable', {
      TableName: name,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
    const update = (name: string, key: string) => client.ok('UpdateItem', {
      TableName: name,
      Key: { pk: { S: key } },
      UpdateExpression: 'SET v = :v',
      ExpressionAttributeValues: { ':v': { S: 'x'.repeat(200) } },
    });
    const get = (name: string, key: string) => client.ok('GetItem', { TableName: name, Key: { pk: { S: key } } });
    /** `count` calls of `call(i)`, LANES at a time. */
    const calls = (count: number, call: (i: number) => Promise<void>) => Promise.all(Array.from({ length: LANES }, async (_, lane) => {
      for (let i = lane; i < count; i += LANES) await call(i);
    }));
    /** DynamoDB Local's CPU per call of `requests` calls, ms. */
    const cpuPerRequest = async (call: (i: number) => Promise<void>) => {
      const before = processCpuMs(db.pid);
      await calls(requests, call);
      return (processCpuMs(db.pid) - before) / requests;
    };

    await table('early');
    await calls(EARLY_WRITES, (i) => update('early', `warm-${i}`));
    const fillStarted = performance.now();
    await table('heavy');
    await calls(records, (i) => update('heavy', `heavy-${i}`));
    process.stdout.write(`${records} records written to another table's stream in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s\n`);
    await table('late');
    await update('late', 'first');
    const older = EARLY_WRITES + records;
    const cpu = { early: { update: [] as number[], get: [] as number[] }, late: { update: [] as number[], get: [] as number[] } };
    for (let round = 0; round < rounds; round++) {
      for (const name of ['early', 'late'] as const) {
        cpu[name].update.push(await cpuPerRequest((i) => update(name, `r${round}-${i}`)));
        cpu[name].get.push(await cpuPerRequest((i) => get(name, `r${round}-${i}`)));
      }
    }
    const line = (what: 'update' | 'get', label: string) => {
      const e = median(cpu.early[what]);
      const l = median(cpu.late[what]);
      return `  ${label}: ${e.toFixed(2)} ms on a table whose stream began first, ${l.toFixed(2)} ms on one whose stream began after`
        + ` ${older} records of other tables (${(l / e).toFixed(1)}x; ${(((l - e) / older) * 1000).toFixed(2)} µs per older record)`;
    };
    process.stdout.write([
      `DynamoDB Local's CPU per request, ${requests} requests ${LANES} at a time, median of ${rounds}:`,
      line('update', 'UpdateItem'),
      line('get', 'GetItem'),
    ].join('\n') + '\n');
  } finally {
    client.close();
    await db.stop();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
