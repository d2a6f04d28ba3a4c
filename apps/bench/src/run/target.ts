import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startApiProcess } from '../../../../test/support/processes.ts';
import { Receiver } from '../../../../test/support/receiver.ts';
import { benchDatabase } from '../database.ts';

export interface Target {
  readonly baseUrl: string;
  readonly authSecret: string;
  readonly databaseUrl: string;
  /** For the invariant audit and the run's own observations, never for load. */
  readonly pool: pg.Pool;
  /** The data platform the service delivers to, when the benchmark started the service. */
  readonly receiver: Receiver | null;
  readonly description: string;
  /** The service's process on this machine, for its CPU time; null with --url. */
  readonly servicePid: number | null;
  /** Whether pg_stat_statements can be read in the benchmark's database. */
  readonly statements: boolean;
  close(): Promise<void>;
}

/**
 * The service under test. With --url, the user's running service (DATABASE_URL must name its
 * database and AUTH_SECRET its secret). Otherwise the benchmark starts apps/api itself on a fresh
 * database (embedded PostgreSQL, or a new database on DATABASE_URL's server) and points its
 * DATA_PLATFORM_URL at a local receiver, so event delivery is part of what is measured.
 */
export async function startTarget(url: string | undefined, poolSize: number, cpuProfileDir: string | null = null, orderWrites = 2): Promise<Target> {
  if (url) {
    const databaseUrl = process.env.DATABASE_URL;
    const authSecret = process.env.AUTH_SECRET;
    if (!databaseUrl || !authSecret) throw new Error('--url needs DATABASE_URL (its database) and AUTH_SECRET (its secret)');
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    let statements = true;
    try {
      await pool.query('SELECT 1 FROM pg_stat_statements LIMIT 1');
    } catch {
      statements = false;
    }
    return { baseUrl: url, authSecret, databaseUrl, pool, receiver: null, description: `service at ${url}`, servicePid: null, statements, close: () => pool.end() };
  }
  const database = await benchDatabase();
  const receiver = await new Receiver().start();
  const authSecret = randomBytes(32).toString('base64url');
  const api = await startApiProcess(database.url, {
    AUTH_SECRET: authSecret,
    DATA_PLATFORM_URL: receiver.url,
    LOG_LEVEL: 'info',
    DATABASE_POOL_SIZE: String(poolSize),
    ORDER_WRITES_IN_FLIGHT: String(orderWrites),
    // All load comes from this one address; the per-address limit would measure itself. The
    // per-user limit stays at the production default.
    RATE_LIMIT_IP_PER_SEC: '0',
    RATE_LIMIT_USER_PER_SEC: '20',
    // The service's V8 profile, written when it exits.
    ...(cpuProfileDir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${cpuProfileDir}` } : {}),
  });
  return {
    baseUrl: api.url,
    authSecret,
    databaseUrl: database.url,
    pool: database.db.pool,
    receiver,
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
