/**
 * DynamoDB Local's launch: the JVM options it runs with (tuned for short test sessions by default,
 * replaced by the option or the environment variable), telemetry off, and a database that answers.
 * The command line is read from /proc (Linux, where CI runs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { DYNAMODB_LOCAL_JVM_OPTIONS, JVM_OPTIONS_ENV, startDynamoDbLocal } from '../src/dynamodb-local';

const commandLine = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** ListTables, unsigned in substance (DynamoDB Local reads but does not check signatures). */
function listTables(endpoint: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.ListTables',
        'authorization': 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0',
        'x-amz-date': '20260101T000000Z',
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

const onLinux = existsSync('/proc/self/cmdline') ? describe : describe.skip;

/** Runs `work` with the JVM options variable set to `value` (unset when undefined), then restores it. */
async function withJvmOptionsEnv(value: string | undefined, work: () => Promise<void>) {
  const previous = process.env[JVM_OPTIONS_ENV];
  if (value === undefined) delete process.env[JVM_OPTIONS_ENV];
  else process.env[JVM_OPTIONS_ENV] = value;
  try {
    await work();
  } finally {
    if (previous === undefined) delete process.env[JVM_OPTIONS_ENV];
    else process.env[JVM_OPTIONS_ENV] = previous;
  }
}

onLinux('startDynamoDbLocal', () => {
  // The defaults, whatever the developer's own environment sets.
  test('runs the client compiler and the serial collector, before -jar, with telemetry off; the database answers', () => withJvmOptionsEnv(undefined, async () => {
    const db = await startDynamoDbLocal();
    try {
      const args = commandLine(db.pid);
      const jar = args.indexOf('-jar');
      expect(jar).toBeGreaterThan(0);
      expect(args.slice(0, jar)).toEqual(expect.arrayContaining([...DYNAMODB_LOCAL_JVM_OPTIONS]));
      expect(args.slice(jar)).toEqual(expect.arrayContaining(['-inMemory', '-sharedDb', '-port', String(db.port), '-disableTelemetry']));
      const answer = await listTables(db.endpoint);
      expect(answer).toMatchObject({ status: 200, body: { TableNames: expect.any(Array) } });
    } finally {
      await db.stop();
    }
  }), 120_000);

  test(`${JVM_OPTIONS_ENV} replaces the default JVM options`, () => withJvmOptionsEnv(' -Xmx384m   -XX:+UseSerialGC ', async () => {
    const db = await startDynamoDbLocal();
    try {
      const args = commandLine(db.pid);
      expect(args.slice(0, args.indexOf('-jar'))).toEqual(expect.arrayContaining(['-Xmx384m', '-XX:+UseSerialGC']));
      expect(args).not.toContain('-XX:TieredStopAtLevel=1');
      expect((await listTables(db.endpoint)).status).toBe(200);
    } finally {
      await db.stop();
    }
  }), 120_000);
});
