/**
 * AWS SDK v3 clients, created once per container on first use. Endpoints and region come from the
 * standard environment (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SFN`, ...): the same code runs
 * on AWS and on the local engine, with no local branches.
 *
 * Every handler talks to DynamoDB, so its client lives here. The Step Functions, SNS and Lambda
 * clients are made with `containerClient` next to their one user: esbuild keeps every `require` of an
 * external package it sees, and loading unused SDK clients would slow every cold start.
 *
 * A sampled invocation gets clients captured by the tracer (observability.ts): each call is an X-Ray
 * subsegment of the invocation's. Any other invocation gets plain ones, which carry no tracing
 * middleware: the container keeps one of each, made when first asked for.
 *
 * `containerClient` makes every client with `CLIENT_CONFIG`: it resolves a command's middleware stack
 * on its first call of that command and keeps it (`cacheMiddleware`), instead of on every call.
 * Nothing adds middleware after a client's first call (the tracer captures a client before it is
 * returned).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { sampledTracer } from './observability';

/** The configuration of every handler's SDK clients; endpoints and region come from the environment. */
const CLIENT_CONFIG = { cacheMiddleware: true } as const;

const clients = new Map<string, unknown>();

/** The container's client for `service` (its traced one in a sampled invocation), made with `Client` the first time. */
export function containerClient<T extends object>(service: string, Client: new (config: typeof CLIENT_CONFIG) => T): T {
  const tracer = sampledTracer();
  const key = tracer ? `${service} (traced)` : service;
  let client = clients.get(key);
  if (!client) {
    const made = new Client(CLIENT_CONFIG);
    client = tracer ? tracer.captureAWSv3Client(made) : made;
    clients.set(key, client);
  }
  return client as T;
}

/** The container's DynamoDB client; documents.ts sends item requests with plain values through it. */
export function dynamoDb(): DynamoDBClient {
  return containerClient('dynamodb', DynamoDBClient);
}
