/**
 * The engine's own client for DynamoDB Local, without the AWS SDK: its tables (created at start, a
 * run's status document read back), the Streams API its readers poll on every write, and the
 * DynamoDB calls of `Custom::AWS` resources and Step Functions tasks (aws-sdk-call.ts, through the
 * engine's endpoint). The SDK's DynamoDB client costs about 75 ms of CPU to load and first use in
 * the engine's process (once per process, and once per test file under Jest), and on Node.js 20 it
 * prints its end-of-support notice into the user's test output. The engine's own calls need none
 * of what it adds (schemas, signing, retries); what `Custom::AWS` and Step Functions calls need of
 * it (checked attribute values, the SDK's retries) aws-sdk-call.ts does.
 *
 * One keep-alive connection pool, the AWS JSON 1.0 protocol as the SDK sends it, answers kept as
 * DynamoDB returns them on the wire (numbers as strings, binary as base64), which is also the shape
 * Lambda delivers stream records in. DynamoDB Local runs with -sharedDb: it reads the credential
 * scope but checks no signature; the engine's endpoint reads the access key ID, to know the caller.
 */
import { Agent, request } from 'node:http';

/** An error answer of the API; `name` is the exception name (`ConditionalCheckFailedException`, ...). */
export class DynamoDbJsonError extends Error {
  constructor(name: string, message: string, public readonly status: number) {
    super(message);
    this.name = name;
  }
}

/** The Streams API's operations; every other operation is DynamoDB's. */
const STREAMS_OPERATIONS = new Set(['DescribeStream', 'GetRecords', 'GetShardIterator', 'ListStreams']);

export function isStreamsOperation(operation: string): boolean {
  return STREAMS_OPERATIONS.has(operation);
}

export class DynamoDbJsonClient {
  private readonly url: URL;
  /** As many connections as the SDK's client allows: stream readers, Step Functions' Map states. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 50 });
  private readonly authorization: string;

  /** `endpoint`: DynamoDB Local, or the engine's endpoint (which forwards to it, as `accessKeyId`). */
  constructor(endpoint: string, region: string, accessKeyId: string) {
    this.url = new URL(endpoint);
    this.authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20200101/${region}/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0`;
  }

  /**
   * Calls `DynamoDB_20120810.<operation>`, or `DynamoDBStreams_20120810.<operation>` for a Streams
   * operation; rejects with a DynamoDbJsonError on an error answer.
   */
  public async call<T = any>(operation: string, input: Record<string, unknown>): Promise<T> {
    const body = JSON.stringify(input);
    try {
      return await this.send<T>(operation, body);
    } catch (e) {
      // A kept-alive connection the server had closed (Node.js's advice: send it again). A server that
      // applied the request and then reset the connection would see it twice; the SDK does the same.
      if ((e as { reusedSocket?: boolean }).reusedSocket && (e as NodeJS.ErrnoException).code === 'ECONNRESET') return this.send<T>(operation, body);
      throw e;
    }
  }

  private send<T>(operation: string, body: string): Promise<T> {
    const api = isStreamsOperation(operation) ? 'DynamoDBStreams_20120810' : 'DynamoDB_20120810';
    return new Promise<T>((resolve, reject) => {
      const req = request({
        host: this.url.hostname,
        port: this.url.port,
        method: 'POST',
        path: '/',
        agent: this.agent,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(body),
          'x-amz-target': `${api}.${operation}`,
          'x-amz-date': '20200101T000000Z',
          'authorization': this.authorization,
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            reject(new DynamoDbJsonError('InternalFailure', `DynamoDB answered ${operation} with ${res.statusCode}: ${text.slice(0, 200)}`, res.statusCode ?? 500));
            return;
          }
          if (res.statusCode === 200) {
            resolve(parsed as T);
            return;
          }
          const name = String(parsed.__type ?? 'InternalFailure').split('#').pop()!;
          reject(new DynamoDbJsonError(name, parsed.message ?? parsed.Message ?? text, res.statusCode ?? 500));
        });
      });
      req.on('error', (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })));
      req.end(body);
    });
  }

  public destroy() {
    this.agent.destroy();
  }
}
