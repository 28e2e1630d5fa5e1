/**
 * What a write costs DynamoDB Local on a table whose stream began after many records of other
 * tables (`npx projen bench:dynamodb-streams`; a script, not a test). DynamoDB Local keeps every
 * stream record of every table in one SQLite table keyed by sequence number alone, and each write to
 * a table with a stream looks for that stream's first record from the oldest record on. A jest run's
 * shared DynamoDB Local outlives its test files, and each file's engine makes tables of its own.
 *
 * In one DynamoDB Local: table `early` is made and written first; then `--records` records go to
 * table `heavy`; then table `late` is made. Then `--writes` UpdateItem calls (20 at a time) go to
 * `early` and to `late`, alternately, `--rounds` times. Printed: DynamoDB Local's CPU per write on
 * each (medians), their ratio, and the extra CPU per older record of another stream.
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/dynamodb-streams.ts
 *   options: --records N (default 20000), --writes N (default 1000), --rounds N (default 3),
 *            --small (the build's smoke run: 2,000 records, 200 writes, 1 round)
 * Exit code 1 when a request failed.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bareDynamoDbClient, median, processCpuMs } from './bench-speed';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';

const LANES = 20;

async function main() {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '20000' },
      writes: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '3' },
      small: { type: 'boolean', default: false },
    },
  });
  const records = values.small ? 2000 : Number(values.records);
  const writes = values.small ? 200 : Number(values.writes);
  const rounds = values.small ? 1 : Number(values.rounds);
  const db = await startDynamoDbLocal();
  const client = bareDynamoDbClient(db.endpoint, LANES);
  try {
    const ok = async (operation: string, body: object) => {
      const status = await client.send(operation, JSON.stringify(body));
      if (status !== 200) throw new Error(`${operation} answered ${status}`);
    };
    const table = (name: string) => ok('CreateTable', {
      TableName: name,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
    // `count` UpdateItem calls to `name`, LANES at a time, on distinct keys (each one a stream record).
    const write = (name: string, count: number, tag: string) => Promise.all(Array.from({ length: LANES }, async (_, lane) => {
      for (let i = lane; i < count; i += LANES) {
        await ok('UpdateItem', {
          TableName: name,
          Key: { pk: { S: `${tag}-${i}` } },
          UpdateExpression: 'SET v = :v',
          ExpressionAttributeValues: { ':v': { S: 'x'.repeat(200) } },
        });
      }
    }));
    /** DynamoDB Local's CPU per write of `count` writes to `name`, ms. */
    const cpuPerWrite = async (name: string, tag: string) => {
      const before = processCpuMs(db.pid);
      await write(name, writes, tag);
      return (processCpuMs(db.pid) - before) / writes;
    };

    await table('early');
    await write('early', 500, 'warm');
    const filled = performance.now();
    await table('heavy');
    await write('heavy', records, 'heavy');
    process.stdout.write(`${records} records written to another table's stream in ${((performance.now() - filled) / 1000).toFixed(1)} s\n`);
    await table('late');
    const early: number[] = [];
    const late: number[] = [];
    for (let round = 0; round < rounds; round++) {
      early.push(await cpuPerWrite('early', `r${round}`));
      late.push(await cpuPerWrite('late', `r${round}`));
    }
    const e = median(early);
    const l = median(late);
    process.stdout.write([
      `DynamoDB Local's CPU per UpdateItem, ${writes} writes ${LANES} at a time, median of ${rounds}:`,
      `  a table whose stream began before them: ${e.toFixed(2)} ms`,
      `  a table made after ${records} records of another table's stream: ${l.toFixed(2)} ms (${(l / e).toFixed(1)}x)`,
      `  extra per older record of another stream: ${(((l - e) / records) * 1000).toFixed(2)} µs`,
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
