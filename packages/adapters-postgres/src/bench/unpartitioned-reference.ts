import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { auditInvariants } from '../audit.ts';
import { migrate } from '../migrate.ts';
import { fingerprintDifferences, type HistoryFingerprint } from './history-seed.ts';

/**
 * `pnpm bench --scale --unpartitioned-reference`: the order path on the partitioned history
 * (migration 0014) against the same history in tables that are not partitioned. The reference
 * database is migrated with the numbered migrations before 0014 only and the current definitions
 * (which work on both shapes), so the two differ in their tables alone and run the same functions.
 */
const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
/** The first numbered migration the reference does not apply: the one that partitions the history. */
export const PARTITIONING_MIGRATION = '0014_';
/**
 * Recorded as applied on the reference, after 0013. A migration the service's code does not know is
 * a newer release's to the service's own migrate (MigrateResult.newer): it then applies nothing,
 * neither 0014 nor definitions, and serves on the schema as it is. Without it the apps/api started
 * on the reference would partition it as it starts.
 */
export const REFERENCE_MARKER = '0014_bench_unpartitioned_reference.sql';
const MARKER_TEXT = `-- The benchmark's unpartitioned reference (apps/bench --unpartitioned-reference): migrations up to
-- 0013, the current definitions, history tables not partitioned. Applies nothing; recorded so that
-- the service's migrate takes this database for a newer release's and leaves it as it is.
SELECT 1;
`;

/** Migrates an empty database as the unpartitioned reference: numbered migrations before 0014, this marker, the current definitions. */
export async function migrateUnpartitioned(pool: pg.Pool) {
  const dir = `${await mkdtemp(path.join(os.tmpdir(), 'unpartitioned-migrations-'))}/`;
  try {
    const numbered = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_.*\.sql$/.test(f) && f < PARTITIONING_MIGRATION);
    for (const f of numbered) await cp(MIGRATIONS_DIR + f, dir + f);
    await cp(`${MIGRATIONS_DIR}definitions/`, `${dir}definitions/`, { recursive: true });
    await writeFile(dir + REFERENCE_MARKER, MARKER_TEXT);
    return await migrate(pool, { dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The schema's partitioned tables, by name (none on the reference; orders, order_items, balance_ledger, idempotency_keys and outbox_events after 0014). */
export async function partitionedTables(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ t: string }>(
    `SELECT relname AS t FROM pg_class WHERE relnamespace = to_regnamespace(quote_ident(current_schema())) AND relkind = 'p' ORDER BY 1`);
  return rows.map((r) => r.t);
}

/**
 * What the reference must hold after its runs, as violations naming it: the rows seeded into it
 * those seeded into the partitioned database (each seed's fingerprint), and every invariant
 * (auditInvariants, events purged before the seed's retention as the partitioned one's are).
 */
export async function referenceViolations(
  pool: pg.Pool, initialStock: ReadonlyMap<number, number>, partitioned: { fingerprint: HistoryFingerprint | null },
  reference: { fingerprint: HistoryFingerprint | null; history: { eventsRetainedSince: string } },
): Promise<string[]> {
  const [a, b, eventsPurgedBefore] = [partitioned.fingerprint, reference.fingerprint, new Date(reference.history.eventsRetainedSince)];
  const rows = a && b ? fingerprintDifferences(a, b) : ['the seeded rows were not fingerprinted'];
  return [...rows.map((d) => `seeded rows differ, ${d}`), ...(await auditInvariants(pool, initialStock, { eventsPurgedBefore }))]
    .map((v) => `unpartitioned reference: ${v}`);
}
