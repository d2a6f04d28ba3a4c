import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/domain/test/**/*.test.ts', 'packages/application/test/**/*.test.ts', 'test/docs/**/*.test.ts', 'apps/bench/test/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['packages/adapters-*/test/**/*.test.ts', 'packages/local-clusters/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'apps/bench/test/**'], // the report's arithmetic: no infrastructure, in the unit project
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Two cores: the concurrency tests want the database's attention, not each other's.
          maxWorkers: 2,
        },
      },
    ],
  },
});
