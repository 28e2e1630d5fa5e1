/** Stops the DynamoDB Local that global-setup started, through the package's jest hook. */
import { globalTeardown } from '../../local/src/jest/shared-dynamodb';

export default globalTeardown;
