/**
 * AWS SDK v3 clients, created once per container on first use (so a bundle only loads what its
 * handler calls). Endpoints and region come from the standard environment
 * (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SFN`, ...): the same code runs on AWS and on the
 * local engine, with no local branches.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

let documentClient: DynamoDBDocumentClient | undefined;
let sfnClient: SFNClient | undefined;
let snsClient: SNSClient | undefined;
let lambdaClient: LambdaClient | undefined;

export function dynamoDb(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    // Optional fields (message, startTime, ...) are left out rather than stored as NULL.
    marshallOptions: { removeUndefinedValues: true },
  });
  return documentClient;
}

export function stepFunctions(): SFNClient {
  sfnClient ??= new SFNClient({});
  return sfnClient;
}

export function sns(): SNSClient {
  snsClient ??= new SNSClient({});
  return snsClient;
}

export function lambda(): LambdaClient {
  lambdaClient ??= new LambdaClient({});
  return lambdaClient;
}
