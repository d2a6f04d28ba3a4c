import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '@shop/adapters-postgres';

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
  const given = process.env.TEST_DATABASE_URL;
  if (given) {
    await assertReachable(given, 'TEST_DATABASE_URL');
    project.provide('adminDatabaseUrl', given);
    return;
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
