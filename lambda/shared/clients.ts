/**
 * AWS SDK v3 clients, created once per container on first use. Endpoints and region come from the
 * standard environment (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SFN`, ...): the same code runs
 * on AWS and on the local engine, with no local branches.
 *
 * Every handler talks to DynamoDB, so its client lives here. The Step Functions, SNS and Lambda
 * clients are made with `containerClient` next to their one user: esbuild keeps every `require` of an
 * external package it sees, and loading unused SDK clients would slow every cold start.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

const clients = new Map<string, unknown>();

/** The container's one client for `service`, created by `create` the first time. */
export function containerClient<T>(service: string, create: () => T): T {
  if (!clients.has(service)) clients.set(service, create());
  return clients.get(service) as T;
}

export function dynamoDb(): DynamoDBDocumentClient {
  return containerClient('dynamodb', () => DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    // Optional fields (message, startTime, ...) are left out rather than failing the request.
    marshallOptions: { removeUndefinedValues: true },
  }));
}
