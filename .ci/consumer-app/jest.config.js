module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': ['@swc/jest'],
  },
  setupFilesAfterEnv: ['aws-cdk-lib/testhelpers/jest-autoclean'],
  // One DynamoDB Local for every test file of the run.
  globalSetup: 'cdk-orchestrator-local/jest-global-setup',
  globalTeardown: 'cdk-orchestrator-local/jest-global-teardown',
};
