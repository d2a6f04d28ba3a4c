import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase } from '../database.ts';
import { startEmbeddedPostgres } from '../embedded.ts';
import { migrate } from '../migrate.ts';
import { readsStatements } from './probes.ts';
import { migrateUnpartitioned } from './unpartitioned-reference.ts';

/**
 * A fresh, migrated database, dropped afterwards: on `adminUrl`'s server when given, otherwise
 * on an embedded PostgreSQL that loads pg_stat_statements tracking statements inside functions too
 * (write_order_group is PL/pgSQL), so each workload can list what its time in the database went to.
 * `unpartitioned`: migrated as the unpartitioned reference (migrations up to 0013, the current
 * definitions: unpartitioned-reference.ts). `admin` is the server's, for another database beside it.
 */
export async function scratchDatabase(adminUrl: string | null, o: { unpartitioned?: boolean } = {}) {
  let [admin, stopEmbedded] = [adminUrl, async () => undefined];
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
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(sql).finally(() => c.end());
  };
  const name = `bench_${Date.now().toString(36)}${o.unpartitioned ? '_unpartitioned' : ''}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const db = openDatabase({ connectionString: url.toString(), max: 8 });
  await (o.unpartitioned ? migrateUnpartitioned(db.pool) : migrate(db.pool));
  return {
    db, url: url.toString(), admin,
    statements: await readsStatements(db.pool, true), // on adminUrl's server, only when that server preloads it
    async close() {
      await db.close();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await stopEmbedded();
    },
  };
}
