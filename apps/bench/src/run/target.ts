import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate, openDatabase, startEmbeddedPostgres } from '@shop/adapters-postgres';
import { startApiProcess } from '../../../../test/support/processes.ts';
import { Receiver } from '../../../../test/support/receiver.ts';

/** Whether pg_stat_statements can be read in the database `pool` talks to. */
async function readsStatements(pool: pg.Pool, create: boolean): Promise<boolean> {
  try {
    if (create) await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await pool.query('SELECT 1 FROM pg_stat_statements LIMIT 1');
    return true;
  } catch {
    return false;
  }
}

/**
 * A fresh, migrated database, dropped afterwards: on DATABASE_URL's server when given, otherwise
 * on an embedded PostgreSQL that loads pg_stat_statements tracking statements inside functions too
 * (write_order_group is PL/pgSQL), so each workload can list what its time in the database went to.
 */
export async function benchDatabase() {
  let admin = process.env.DATABASE_URL || null;
  let stopEmbedded = async () => undefined;
  if (!admin) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'order-service-bench-'));
    const flags = ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'];
    const embedded = await startEmbeddedPostgres(dir, undefined, { extraFlags: flags });
    admin = embedded.url;
    stopEmbedded = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const adminQuery = async (sql: string) => {
    const c = new pg.Client({ connectionString: admin! });
    await c.connect();
    await c.query(sql).finally(() => c.end());
  };
  const name = `bench_${Date.now().toString(36)}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const db = openDatabase({ connectionString: url.toString(), max: 8 });
  await migrate(db.pool);
  return {
    db,
    url: url.toString(),
    where: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL',
    // On DATABASE_URL's server, only when that server preloads it.
    statements: await readsStatements(db.pool, true),
    async close() {
      await db.close();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await stopEmbedded();
    },
  };
}

export type Target = Awaited<ReturnType<typeof startTarget>>;

/**
 * The service under test. With --url, the user's running service (DATABASE_URL names its database,
 * AUTH_SECRET its secret). Otherwise apps/api started here on a fresh database, delivering its
 * events to a local receiver, so event delivery is part of what is measured.
 */
export async function startTarget(o: { url?: string; poolSize: number; orderWrites: number; cpuProfileDir: string | null }) {
  if (o.url) {
    const { DATABASE_URL: databaseUrl, AUTH_SECRET: authSecret } = process.env;
    if (!databaseUrl || !authSecret) throw new Error('--url needs DATABASE_URL (its database) and AUTH_SECRET (its secret)');
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    const statements = await readsStatements(pool, false);
    const receiver = null as Receiver | null;
    return { baseUrl: o.url, authSecret, databaseUrl, pool, receiver, description: `service at ${o.url}`, servicePid: null as number | null, statements, close: () => pool.end() };
  }
  const database = await benchDatabase();
  const receiver = await new Receiver().start();
  const authSecret = randomBytes(32).toString('base64url');
  const api = await startApiProcess(database.url, {
    AUTH_SECRET: authSecret,
    DATA_PLATFORM_URL: receiver.url,
    LOG_LEVEL: 'info',
    DATABASE_POOL_SIZE: String(o.poolSize),
    ORDER_WRITES_IN_FLIGHT: String(o.orderWrites),
    // All load comes from one address: the per-address limit would measure itself. The per-user
    // limit stays at the production default.
    RATE_LIMIT_IP_PER_SEC: '0',
    RATE_LIMIT_USER_PER_SEC: '20',
    // The service's V8 profile, written when it exits.
    ...(o.cpuProfileDir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.cpuProfileDir}` } : {}),
  });
  return {
    baseUrl: api.url,
    authSecret,
    databaseUrl: database.url,
    /** For the audit and the run's own observations, never for load. */
    pool: database.db.pool,
    receiver: receiver as Receiver | null,
    description: `apps/api started by the benchmark on ${database.where}, events to a local HTTP receiver`,
    servicePid: api.child.pid ?? null,
    statements: database.statements,
    async close() {
      await api.stop();
      await receiver.stop();
      await database.close();
    },
  };
}
