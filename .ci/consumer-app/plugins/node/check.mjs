// PRE plugin (Node.js): an ES module that imports the Lambda runtime's AWS SDK, as the console's
// default index.mjs does. It checks the application and lets the run go on.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export const handler = async (event) => {
  if (typeof DynamoDBClient !== 'function') throw new Error('the runtime has no AWS SDK');
  return { state: 'Complete', message: `checked ${event.uid ?? 'run'}` };
};
