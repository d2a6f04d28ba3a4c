import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';
import { preparingPool } from './prepared.ts';

const INT8_OID = 20;

/**
 * bigint columns hold won, stock and ids, all bounded far below 2^53 by CHECK constraints,
 * so they are read as plain numbers instead of pg's default strings.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

export interface PoolOptions {
  readonly connectionString: string;
  readonly max?: number;
  readonly applicationName?: string;
  /**
   * Longest a statement may run before PostgreSQL cancels it (SQLSTATE 57014). A stuck database
   * (a lock held by a forgotten session, a full disk) then answers quickly instead of letting
   * requests pile up. 0 = no limit.
   */
  readonly statementTimeoutMs?: number;
  /** Longest a request waits for a connection from a busy pool, or for a new one. 0 = forever. */
  readonly acquireTimeoutMs?: number;
}

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

export function openDatabase(options: PoolOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 16,
    application_name: options.applicationName ?? 'order-service',
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    ...(options.acquireTimeoutMs ? { connectionTimeoutMillis: options.acquireTimeoutMs } : {}),
    types,
  });
  // An idle client's connection can drop (database restart); the pool replaces it. Without a
  // listener the error would crash the process.
  pool.on('error', () => undefined);
  // The same for a client that is checked out but between statements (inside a transaction):
  // pg emits the server's "terminating connection" on the client itself, and an 'error' event
  // without a listener ends the process. The statement that next uses the client fails instead,
  // and its request is answered 503.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparingPool(pool) }) });
  return {
    kysely,
    pool,
    close: () => kysely.destroy(),
  };
}
