import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { ENSURE_PARTITIONS_SQL } from './partitions.ts';

/**
 * Two kinds of schema files (ADR 0011, migrations/README.md):
 * - numbered migrations (`migrations/NNNN_*.sql`): tables, indexes, data moves. Applied once, in
 *   name order, and never edited afterwards: each one's checksum is kept, and a database on which
 *   an applied migration's text has since changed is refused, naming the file.
 * - definitions (`migrations/definitions/NAME.sql`): the current text of the function NAME, applied
 *   after the numbered migrations whenever its checksum changes, as Flyway's repeatable migrations
 *   are. (The schema has no views or triggers yet; the first one needs a check of its own, as
 *   functions have in applyDefinition.)
 */
const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));
const DEFINITIONS_SUBDIR = 'definitions/';
/** Serialises migrators: several API processes may start at once on one database. */
const MIGRATION_LOCK = [0x5e7a11, 1];

export interface MigrateOptions {
  /** Where the numbered migrations are, with their definitions in `definitions/` below (tests). */
  readonly dir?: string;
}

/** A numbered migration whose text differs from what was applied, or that came too late to apply. */
export class MigrationHistoryError extends Error {
  override readonly name = 'MigrationHistoryError';
}

interface SchemaFile {
  readonly name: string;
  readonly text: string;
  readonly checksum: string;
}

export interface MigrateResult {
  /** What this call applied: numbered migrations by file name, definitions as `definitions/NAME.sql`. */
  readonly applied: string[];
  /**
   * Migrations the database applied that this code does not have: a newer release upgraded it (a
   * rolling deploy, or a rollback). Then nothing is applied, not even the definitions, whose older
   * texts here would replace the newer release's under its running instances.
   */
  readonly newer: string[];
  /**
   * This code's release (the number of its newest numbered migration) when the database allows only
   * newer ones (schema_compatibility, migration 0013): it must not serve on this schema. Null when
   * it may.
   */
  readonly tooOld: { readonly release: number; readonly oldestAllowed: number } | null;
}

/**
 * Brings the database to this code's schema. Refuses, changing nothing, a database whose history
 * this code cannot vouch for (MigrationHistoryError); leaves alone one a newer release upgraded.
 */
export async function migrate(pool: pg.Pool, options: MigrateOptions = {}): Promise<MigrateResult> {
  const dir = options.dir ?? MIGRATIONS_DIR;
  const migrations = await schemaFiles(dir);
  const definitions = await schemaFiles(dir + DEFINITIONS_SUBDIR);
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    // A migration, or waiting for another process's, may take longer than a request may.
    await client.query('SET statement_timeout = 0');
    await client.query('SELECT pg_advisory_lock($1, $2)', MIGRATION_LOCK);
    await ensureHistoryTables(client);

    const done = await recorded(client, 'schema_migrations');
    const known = new Set(migrations.map((m) => m.name));
    const newer = [...done.keys()].filter((name) => !known.has(name)).sort();
    if (newer.length > 0) return { applied, newer, tooOld: await compatibility(client, migrations) };
    checkHistory(migrations, done);
    await adoptEarlierReleases(client, migrations, done);
    for (const file of migrations) {
      if (done.has(file.name)) continue;
      await inTransaction(client, async () => {
        await named(`migration ${file.name}`, () => client.query(file.text));
        await client.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [file.name, file.checksum]);
      });
      applied.push(file.name);
    }

    // After every numbered migration, so that a definition always meets the tables it reads.
    const current = await recorded(client, 'schema_definitions');
    const changed = definitions.filter((d) => current.get(d.name) !== d.checksum);
    // A file deleted (its function dropped by a numbered migration) leaves no record behind, so the
    // same text added back one day is applied again.
    const gone = [...current.keys()].filter((name) => !definitions.some((d) => d.name === name));
    if (changed.length > 0 || gone.length > 0) {
      await inTransaction(client, async () => {
        for (const d of changed) await named(`definition ${DEFINITIONS_SUBDIR}${d.name}`, () => applyDefinition(client, d));
        await client.query('DELETE FROM schema_definitions WHERE name = ANY($1::text[])', [gone]);
      });
      applied.push(...changed.map((d) => DEFINITIONS_SUBDIR + d.name));
    }
    // The partitions rows will need from now on (partitions.ts): a new database has none yet.
    const { rows } = await client.query<{ f: string | null }>(`SELECT to_regproc('ensure_partitions')::text AS f`);
    if (rows[0]!.f !== null) {
      await client.query(ENSURE_PARTITIONS_SQL);
    }
    return { applied, newer: [], tooOld: await compatibility(client, migrations) };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', MIGRATION_LOCK).catch(() => undefined);
    await client.query('RESET statement_timeout').catch(() => undefined);
    client.release();
  }
}

/** Whether this code's release is one the database still allows (schema_compatibility). */
async function compatibility(client: pg.PoolClient, migrations: readonly SchemaFile[]): Promise<MigrateResult['tooOld']> {
  const release = Math.max(0, ...migrations.map((m) => Number(/^(\d+)_/.exec(m.name)?.[1] ?? 0)));
  const exists = (await client.query<{ t: string | null }>(`SELECT to_regclass('schema_compatibility')::text AS t`)).rows[0]!.t !== null;
  const oldestAllowed = exists ? ((await client.query<{ oldest: number }>('SELECT oldest_release AS oldest FROM schema_compatibility')).rows[0]?.oldest ?? 0) : 0;
  return release < oldestAllowed ? { release, oldestAllowed } : null;
}

async function schemaFiles(dir: string): Promise<SchemaFile[]> {
  const names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.sql')).map((e) => e.name);
  return Promise.all(
    names.sort().map(async (name) => {
      const text = await readFile(dir + name, 'utf8');
      return { name, text, checksum: checksumOf(text) };
    }),
  );
}

/** sha256 of the text with its line endings made LF, so a checkout's line-ending setting cannot change it. */
export function checksumOf(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

/**
 * schema_migrations predates checksums: its rows of earlier releases have none (null), and the
 * column is added after the table's first two so that an upgraded database and a new one have
 * the same table.
 */
async function ensureHistoryTables(client: pg.PoolClient): Promise<void> {
  await client.query(`
    CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
    ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text;
    CREATE TABLE IF NOT EXISTS schema_definitions (
      name        text        PRIMARY KEY,
      checksum    text        NOT NULL,
      applied_at  timestamptz NOT NULL DEFAULT now()
    );`);
}

async function recorded(client: pg.PoolClient, table: 'schema_migrations' | 'schema_definitions'): Promise<Map<string, string | null>> {
  const { rows } = await client.query<{ name: string; checksum: string | null }>(`SELECT name, checksum FROM ${table}`);
  return new Map(rows.map((r) => [r.name, r.checksum]));
}

/**
 * Refuses a history this code cannot vouch for: an applied migration whose file now reads
 * differently (the database kept the old text, and later files were written against the new
 * one), or a pending one named before one already applied (written on a branch, merged late: it
 * would run against a schema its author never saw). A row without a checksum was applied by a
 * release before checksums; it is taken at its word and gets the file's checksum.
 */
function checkHistory(files: readonly SchemaFile[], done: Map<string, string | null>): void {
  for (const file of files) {
    const checksum = done.get(file.name);
    if (checksum && checksum !== file.checksum) {
      throw new MigrationHistoryError(
        `migration ${file.name} was changed after this database applied it (applied sha256 ${checksum}, file now ${file.checksum}); ` +
          'an applied migration is never edited: restore its text and put the change in a new migration',
      );
    }
  }
  const newestApplied = files.filter((f) => done.has(f.name)).at(-1)?.name;
  const late = files.find((f) => !done.has(f.name) && newestApplied !== undefined && f.name < newestApplied);
  if (late) {
    throw new MigrationHistoryError(
      `migration ${late.name} is new but sorts before ${newestApplied}, which this database already applied; give it a number after the newest`,
    );
  }
}

/** Rows of releases before checksums (null) get their file's: from now on, an edit of that file is caught too. */
async function adoptEarlierReleases(client: pg.PoolClient, files: readonly SchemaFile[], done: Map<string, string | null>): Promise<void> {
  const adopted = files.filter((f) => done.has(f.name) && done.get(f.name) === null);
  if (adopted.length === 0) return;
  await client.query(
    'UPDATE schema_migrations m SET checksum = a.checksum FROM unnest($1::text[], $2::text[]) a(name, checksum) WHERE m.name = a.name AND m.checksum IS NULL',
    [adopted.map((f) => f.name), adopted.map((f) => f.checksum)],
  );
}

async function inTransaction(client: pg.PoolClient, work: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await work();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

/** Runs `step`, naming the file in its error. */
async function named<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw new Error(`${what} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** invalid_function_definition: what CREATE OR REPLACE refuses to change in place (a result type, OUT columns, a parameter's name). */
const CANNOT_REPLACE = '42P13';

/**
 * Applies one definition file: its CREATE OR REPLACE keeps the object (and the plans that use it)
 * when its signature stays; any other function of the same name is one an earlier text defined
 * (a signature since changed) and is dropped, so the catalog holds exactly what the files say. A
 * change CREATE OR REPLACE refuses (same arguments, another result) drops the function of that
 * name first, in the same transaction; a text that is wrong in itself then fails as it would have.
 */
async function applyDefinition(client: pg.PoolClient, d: SchemaFile): Promise<void> {
  const object = d.name.replace(/\.sql$/, '');
  // Each function of that name with its row version: the text's own are those it made or replaced.
  const versions = async () => (await client.query<{ signature: string; version: string }>(
    `SELECT p.oid::regprocedure::text AS signature, p.oid::text || ':' || p.xmin::text AS version FROM pg_proc p
      WHERE p.pronamespace = to_regnamespace(quote_ident(current_schema())) AND p.proname = $1`,
    [object],
  )).rows;
  const before = await versions();
  await client.query('SAVEPOINT definition');
  try {
    await client.query(d.text);
  } catch (err) {
    if ((err as { code?: unknown }).code !== CANNOT_REPLACE) throw err;
    await client.query('ROLLBACK TO SAVEPOINT definition');
    for (const { signature } of before) await client.query(`DROP FUNCTION ${signature}`);
    await client.query(d.text);
  }
  await client.query('RELEASE SAVEPOINT definition');
  const kept = new Set(before.map((r) => r.version));
  const rows = (await versions()).map((r) => ({ signature: r.signature, now: !kept.has(r.version) }));
  // Checked before anything is dropped: a file that defines another name must not drop this one.
  if (!rows.some((r) => r.now)) throw new Error(`it must define a function named ${object}`);
  for (const { signature } of rows.filter((r) => !r.now)) await client.query(`DROP FUNCTION ${signature}`);
  await client.query(
    `INSERT INTO schema_definitions (name, checksum) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
    [d.name, d.checksum],
  );
}
