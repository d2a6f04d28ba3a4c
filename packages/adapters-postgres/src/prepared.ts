import type { CompiledQuery, Kysely, PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import type { Database } from './schema.ts';

/**
 * Runs `query` as a named statement, so that each connection parses and plans it once and then
 * only binds and runs it (a PostgreSQL prepared statement). Sent unnamed, as pg sends every
 * statement by default, the order snapshot cost PostgreSQL more to parse and plan than to run:
 * 0.29 ms a call against 0.11 prepared, and 0.40 against 0.12 with an Idempotency-Key (pgbench,
 * docs/performance-log.md, 2026-12-02).
 *
 * Only for a statement whose text never changes (values are parameters), run on every request:
 * each name is one statement kept by every pooled connection. The name travels in the text, as a
 * leading comment, so it passes through Kysely (plugins, transactions) and shows in
 * pg_stat_statements.
 */
export async function executePrepared<R>(
  db: Kysely<Database>,
  name: string,
  query: { compile(db: Kysely<Database>): CompiledQuery<R> },
): Promise<R[]> {
  if (!/^[a-z_]+$/.test(name)) throw new Error(`prepared statement name ${JSON.stringify(name)}: lowercase letters and _ only`);
  const compiled = query.compile(db);
  return (await db.executeQuery<R>({ ...compiled, sql: `/* prepared ${name} */ ${compiled.sql}` })).rows;
}

const NAMED = /^\/\* prepared ([a-z_]+) \*\//;

/**
 * `pool` as Kysely's PostgresDialect takes it, with the statements of `executePrepared` sent as named
 * statements. pg prepares a name on a connection the first time it is used there (a new
 * connection after a database restart prepares it again) and then sends only Bind and Execute.
 */
export function preparingPool(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    // Kysely opens a control connection of this class to cancel an aborted statement.
    Client: (pool as unknown as { Client?: PostgresPool['Client'] }).Client,
    options: pool.options,
    end: () => pool.end(),
    async connect() {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (!wrapped) {
        wrapped = preparingClient(client);
        clients.set(client, wrapped);
      }
      return wrapped;
    },
  };
}

function preparingClient(client: pg.PoolClient): PostgresPoolClient {
  const query = (text: unknown, values?: readonly unknown[]): unknown => {
    const name = typeof text === 'string' ? NAMED.exec(text)?.[1] : undefined;
    if (name) return client.query({ name, text: text as string, values: values as unknown[] });
    return (client.query as (t: unknown, v?: unknown) => unknown)(text, values);
  };
  return {
    // Kysely reads the backend pid from it to cancel a statement (an aborted query).
    get processID() {
      return (client as unknown as { processID?: number }).processID;
    },
    query: query as PostgresPoolClient['query'],
    release: (destroy?: boolean) => client.release(destroy),
  };
}
