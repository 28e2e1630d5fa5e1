import { Logger } from '@aws-lambda-powertools/logger';
export const l = new Logger();
