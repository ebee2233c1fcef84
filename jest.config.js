'use strict';
/** Tests are TypeScript run by ts-jest; they drive the built product in dist/ (npm test builds it first). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  testTimeout: 30000,
  maxWorkers: 2,
};
