import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate, openDatabase, startEmbeddedPostgres, type Db } from '@shop/adapters-postgres';

export interface BenchDatabase {
  readonly db: Db;
  readonly url: string;
  readonly where: string;
  /** Whether pg_stat_statements is loaded and created in this database (always, on the embedded server). */
  readonly statements: boolean;
  close(): Promise<void>;
}

/**
 * The embedded server loads pg_stat_statements, tracking statements inside functions too
 * (write_orders is PL/pgSQL), so each workload can list what its time in the database went to.
 */
export const STATEMENT_STATS_FLAGS = ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'] as const;

/**
 * A fresh, migrated database for one benchmark run: on DATABASE_URL's server when given,
 * otherwise on an embedded PostgreSQL in a temporary directory. It is dropped afterwards.
 */
export async function benchDatabase(): Promise<BenchDatabase> {
  let admin = process.env.DATABASE_URL || null;
  let stopEmbedded: (() => Promise<void>) | null = null;
  let where = 'DATABASE_URL';
  if (!admin) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'order-service-bench-'));
    const embedded = await startEmbeddedPostgres(dir, undefined, { extraFlags: STATEMENT_STATS_FLAGS });
    admin = embedded.url;
    where = 'embedded PostgreSQL';
    stopEmbedded = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const name = `bench_${Date.now().toString(36)}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const db = openDatabase({ connectionString: u.toString(), max: 8 });
  await migrate(db.pool);
  // On DATABASE_URL's server, only when that server preloads it.
  let statements = true;
  try {
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await db.pool.query('SELECT 1 FROM pg_stat_statements LIMIT 1');
  } catch {
    statements = false;
  }
  return {
    db,
    url: u.toString(),
    where,
    statements,
    async close() {
      await db.close();
      const d = new pg.Client({ connectionString: admin! });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
      await stopEmbedded?.();
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
