/**
 * What the tests of DynamoDB Local's launch share: its command line (Linux /proc), a request it
 * answers, and environment variables set for a while.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';

/** A process's command line, from /proc (Linux). */
export const commandLine = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** ListTables, unsigned in substance (DynamoDB Local reads but does not check signatures). */
export function listTables(endpoint: string): Promise<{ status: number; body: any }> {
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

/** Sets these environment variables (undefined: unset); the function returned restores them. */
export function setEnvironment(variables: Record<string, string | undefined>): () => void {
  const previous = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  set(variables);
  return () => set(previous);
}

/** Runs `work` with these environment variables (undefined: unset), then restores them. */
export async function withEnvironment<T>(variables: Record<string, string | undefined>, work: () => Promise<T>): Promise<T> {
  const restore = setEnvironment(variables);
  try {
    return await work();
  } finally {
    restore();
  }
}
