/**
 * The variable global-setup (the package's jest hook) publishes DynamoDB Local's endpoint in, for
 * every test file; engines without `dynamodbEndpoint` use it by themselves.
 */
export { SHARED_DYNAMODB_ENDPOINT_ENV as DYNAMODB_LOCAL_ENDPOINT } from '../../local/src/jest/shared-dynamodb';
