/**
 * The engine's own client for DynamoDB Local's Streams API: the stream readers poll on every write,
 * so a poll must cost little. One keep-alive connection, the AWS JSON 1.0 protocol as the SDK sends
 * it, answers kept as DynamoDB Local returns them — which is also the shape Lambda delivers records
 * in (numbers as strings, binary as base64, ApproximateCreationDateTime in epoch seconds).
 * DynamoDB Local runs with -sharedDb: it reads the credential scope but does not check signatures.
 */
import { Agent, request } from 'node:http';

/** An error answer of the API; `name` is the exception name (`TrimmedDataAccessException`, ...). */
export class DynamoDbStreamsError extends Error {
  constructor(name: string, message: string, public readonly status: number) {
    super(message);
    this.name = name;
  }
}

export class DynamoDbStreamsApi {
  private readonly url: URL;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly authorization: string;

  constructor(endpoint: string, region: string, accessKeyId: string) {
    this.url = new URL(endpoint);
    this.authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20200101/${region}/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0`;
  }

  /** Calls `DynamoDBStreams_20120810.<operation>`; rejects with a DynamoDbStreamsError on an error answer. */
  public call<T = any>(operation: 'DescribeStream' | 'GetShardIterator' | 'GetRecords', input: Record<string, unknown>): Promise<T> {
    const body = JSON.stringify(input);
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
          'x-amz-target': `DynamoDBStreams_20120810.${operation}`,
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
            reject(new DynamoDbStreamsError('InternalFailure', `DynamoDB Local answered ${operation} with ${res.statusCode}: ${text.slice(0, 200)}`, res.statusCode ?? 500));
            return;
          }
          if (res.statusCode === 200) {
            resolve(parsed as T);
            return;
          }
          const name = String(parsed.__type ?? 'InternalFailure').split('#').pop()!;
          reject(new DynamoDbStreamsError(name, parsed.message ?? parsed.Message ?? text, res.statusCode ?? 500));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  public destroy() {
    this.agent.destroy();
  }
}
