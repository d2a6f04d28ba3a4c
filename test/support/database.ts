import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate, openDatabase, type Db } from '@shop/adapters-postgres';

export interface TestDatabase {
  readonly url: string;
  readonly db: Db;
  /** Plain SQL for arranging and checking state, independent of the code under test. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A fresh, migrated database on the run's server, so test files never see each other's rows;
 * with `migrate: false`, an empty one (a test of the migrations themselves).
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const admin = inject('adminDatabaseUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = withDatabase(admin, name);
  const db = openDatabase({ connectionString: url, max: 20 });
  if (options.migrate !== false) await migrate(db.pool);
  return {
    url,
    db,
    async query(text, values) {
      return (await db.pool.query(text, values as unknown[])).rows;
    },
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
