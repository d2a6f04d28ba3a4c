import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '@shop/adapters-postgres';
import { TEST_TMPDIR_ENV } from './temp.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}

async function assertReachable(url: string, source: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(`PostgreSQL from ${source} is unreachable (${(err as Error).message}); the integration tests need it`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const dockerAvailable = () => Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');

/**
 * One PostgreSQL server for the whole run: TEST_DATABASE_URL when given (CI: the machine's
 * server), a testcontainers one where Docker runs, else real PostgreSQL binaries from npm.
 * Each test file then creates a database of its own on it.
 */
export default async function setup(project: TestProject) {
  const stopDatabase = await startDatabase(project);
  const checkTemp = await tempDirectoryOfThisRun();
  return async () => {
    await stopDatabase?.();
    await checkTemp();
  };
}

/**
 * The helpers' temporary directories (DATA_DIR of every app and process the tests start) are made
 * in a directory of this run's own, which the workers find in the environment. Each helper removes
 * its own when the app or process stops; whatever is still there at the end is a leak, and fails
 * the run (after it is removed, so a run never leaves anything behind in os.tmpdir()).
 */
async function tempDirectoryOfThisRun(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'order-service-run-'));
  // As root, an embedded PostgreSQL runs as the postgres user, who must reach its directory in here.
  await chmod(dir, 0o711);
  process.env[TEST_TMPDIR_ENV] = dir;
  return async () => {
    const left = await readdir(dir).catch(() => []);
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    delete process.env[TEST_TMPDIR_ENV];
    if (left.length > 0) {
      throw new Error(`the tests left ${left.length} temporary director${left.length === 1 ? 'y' : 'ies'} behind (now removed): ${left.join(', ')}`);
    }
  };
}

async function startDatabase(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) {
    await assertReachable(given, 'TEST_DATABASE_URL');
    project.provide('adminDatabaseUrl', given);
    return undefined;
  }
  if (dockerAvailable()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:15-alpine').start();
    project.provide('adminDatabaseUrl', container.getConnectionUri());
    return async () => {
      await container.stop();
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'order-service-test-'));
  const embedded = await startEmbeddedPostgres(dir);
  await assertReachable(embedded.url, 'the embedded server');
  project.provide('adminDatabaseUrl', embedded.url);
  return async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
