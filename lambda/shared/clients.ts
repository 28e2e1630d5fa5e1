/**
 * AWS SDK v3 clients, created once per container on first use. Endpoints and region come from the
 * standard environment (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SFN`, ...): the same code runs
 * on AWS and on the local engine, with no local branches.
 *
 * Every handler talks to DynamoDB, so its client lives here. The Step Functions, SNS and Lambda
 * clients are made with `containerClient` next to their one user: esbuild keeps every `require` of an
 * external package it sees, and loading unused SDK clients would slow every cold start.
 *
 * Every client is traced (Powertools Tracer, observability.ts): each call is an X-Ray subsegment of
 * the invocation's, and a no-op when tracing is off.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { tracer } from './observability';

const clients = new Map<string, unknown>();

/** The container's one client for `service`, created by `create` the first time and traced. */
export function containerClient<T extends object>(service: string, create: () => T): T {
  if (!clients.has(service)) clients.set(service, tracer.captureAWSv3Client(create()));
  return clients.get(service) as T;
}

export function dynamoDb(): DynamoDBDocumentClient {
  // The document client shares the captured client's middleware stack, so its calls are traced too.
  return containerClient('dynamodb', () => DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient({})), {
    // Optional fields (message, startTime, ...) are left out rather than failing the request.
    marshallOptions: { removeUndefinedValues: true },
  }));
}
