/** global-setup publishes DynamoDB Local's endpoint in this environment variable for every test file. */
export const DYNAMODB_LOCAL_ENDPOINT = 'DYNAMODB_LOCAL_ENDPOINT';
