import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { checksumOf, migrate, MigrationHistoryError } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { makeTempDir, removeTempDir } from '../../../test/support/temp.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));
const DEFINITIONS = MIGRATIONS + 'definitions/';

const sqlFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();

describe('the schema files', () => {
  test('no released migration has changed, and every migration is listed as released', async () => {
    const listed = (await readFile(new URL('./released-migrations.sha256', import.meta.url), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/) as [string, string]);
    const files = await sqlFiles(MIGRATIONS);
    expect(listed.map(([, name]) => name)).toEqual(files);
    for (const [sum, name] of listed) {
      expect(checksumOf(await readFile(MIGRATIONS + name, 'utf8')), `${name} was edited after its release`).toBe(sum);
    }
  });

  test('every function of the schema is defined in exactly one definitions file, named for it', async () => {
    const tdb = await createTestDatabase();
    try {
      const functions = (await tdb.query<{ name: string }>(
        `SELECT proname AS name FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY proname`,
      )).map((r) => r.name);
      const files = await sqlFiles(DEFINITIONS);
      expect(functions).toEqual(files.map((f) => f.replace(/\.sql$/, '')));
      for (const file of files) {
        const text = await readFile(DEFINITIONS + file, 'utf8');
        expect(text.match(/CREATE (OR REPLACE )?FUNCTION/g), file).toHaveLength(1);
      }
    } finally {
      await tdb.drop();
    }
  });
});

describe('migrate', () => {
  let dir: string;
  let tdb: TestDatabase;
  beforeEach(async () => {
    dir = makeTempDir('migrations-') + '/';
    await cp(MIGRATIONS, dir, { recursive: true });
    tdb = await createTestDatabase({ migrate: false });
  });
  afterEach(async () => {
    await tdb.drop();
    await removeTempDir(dir);
  });

  const history = async () =>
    tdb.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations ORDER BY name');

  test('records each migration with its checksum, and each definition with its own', async () => {
    await migrate(tdb.db.pool, { dir });
    const files = await sqlFiles(dir);
    expect(await history()).toEqual(
      await Promise.all(files.map(async (name) => ({ name, checksum: checksumOf(await readFile(dir + name, 'utf8')) }))),
    );
    const defs = await tdb.query<{ name: string }>('SELECT name FROM schema_definitions ORDER BY name');
    expect(defs.map((d) => d.name)).toEqual(await sqlFiles(dir + 'definitions/'));
  });

  test('refuses a database on which an applied migration has since changed, naming the file, and applies nothing', async () => {
    await migrate(tdb.db.pool, { dir });
    await writeFile(dir + '0003_best_sellers.sql', (await readFile(dir + '0003_best_sellers.sql', 'utf8')) + '\n-- edited\n');
    await writeFile(dir + '9999_next.sql', 'CREATE TABLE must_not_exist (id int);');
    const refused = migrate(tdb.db.pool, { dir });
    await expect(refused).rejects.toThrow(MigrationHistoryError);
    await expect(refused).rejects.toThrow(/migration 0003_best_sellers\.sql was changed after this database applied it/);
    expect(await tdb.query(`SELECT to_regclass('must_not_exist') AS t`)).toEqual([{ t: null }]);
    expect((await history()).map((r) => r.name)).not.toContain('9999_next.sql');
  });

  test('a line-ending change alone is not a change', async () => {
    await migrate(tdb.db.pool, { dir });
    const text = await readFile(dir + '0002_outbox_delivery.sql', 'utf8');
    await writeFile(dir + '0002_outbox_delivery.sql', text.replace(/\n/g, '\r\n'));
    await expect(migrate(tdb.db.pool, { dir })).resolves.toEqual({ applied: [], newer: [], tooOld: null });
  });

  test('refuses a new migration named before one already applied', async () => {
    await migrate(tdb.db.pool, { dir });
    await writeFile(dir + '0010_a_late_branch.sql', 'CREATE TABLE must_not_exist (id int);');
    await expect(migrate(tdb.db.pool, { dir })).rejects.toThrow(/0010_a_late_branch\.sql is new but sorts before \d{4}_/);
    expect(await tdb.query(`SELECT to_regclass('must_not_exist') AS t`)).toEqual([{ t: null }]);
  });

  test('adopts the checksum-less history of an earlier release, and then guards it', async () => {
    await migrate(tdb.db.pool, { dir });
    await tdb.query('UPDATE schema_migrations SET checksum = NULL');
    await expect(migrate(tdb.db.pool, { dir })).resolves.toEqual({ applied: [], newer: [], tooOld: null });
    expect((await history()).every((r) => r.checksum !== null)).toBe(true);
    await writeFile(dir + '0001_init.sql', '-- rewritten\n' + (await readFile(dir + '0001_init.sql', 'utf8')));
    await expect(migrate(tdb.db.pool, { dir })).rejects.toThrow(/0001_init\.sql was changed/);
  });

  test('re-applies a definition whose text changed, and only that one', async () => {
    await migrate(tdb.db.pool, { dir });
    const file = dir + 'definitions/completed_key.sql';
    await writeFile(file, (await readFile(file, 'utf8')).replace('RETURN NULL;', 'RETURN NULL; -- no key, nothing stored'));
    expect((await migrate(tdb.db.pool, { dir })).applied).toEqual(['definitions/completed_key.sql']);
    const [fn] = await tdb.query<{ d: string }>(`SELECT pg_get_functiondef('completed_key'::regproc) AS d`);
    expect(fn!.d).toContain('-- no key, nothing stored');
    expect((await migrate(tdb.db.pool, { dir })).applied).toEqual([]);
  });

  test('says when this release is older than the database allows (schema_compatibility), newer migrations or not', async () => {
    await migrate(tdb.db.pool, { dir });
    const release = Math.max(...(await readdir(dir)).filter((f) => /^\d{4}_/.test(f)).map((f) => Number(f.slice(0, 4))));
    expect(await tdb.query('SELECT oldest_release FROM schema_compatibility')).toEqual([{ oldest_release: 12 }]);
    await tdb.query('UPDATE schema_compatibility SET oldest_release = $1', [release + 1]);
    expect(await migrate(tdb.db.pool, { dir })).toEqual({ applied: [], newer: [], tooOld: { release, oldestAllowed: release + 1 } });
    await tdb.query(`INSERT INTO schema_migrations (name, checksum) VALUES ('9999_from_a_newer_release.sql', 'x')`);
    expect((await migrate(tdb.db.pool, { dir })).tooOld).toEqual({ release, oldestAllowed: release + 1 });
  });

  test('leaves alone a database a newer release upgraded: no migration, no definition of this older code', async () => {
    await migrate(tdb.db.pool, { dir });
    await tdb.query(`INSERT INTO schema_migrations (name, checksum) VALUES ('9999_from_a_newer_release.sql', 'x')`);
    const file = dir + 'definitions/completed_key.sql';
    await writeFile(file, (await readFile(file, 'utf8')).replace('RETURN NULL;', 'RETURN NULL; -- older text'));
    await writeFile(dir + '0999_pending_here.sql', 'CREATE TABLE must_not_exist (id int);');
    expect(await migrate(tdb.db.pool, { dir })).toEqual({ applied: [], newer: ['9999_from_a_newer_release.sql'], tooOld: null });
    const [fn] = await tdb.query<{ d: string }>(`SELECT pg_get_functiondef('completed_key'::regproc) AS d`);
    expect(fn!.d).not.toContain('older text');
    expect(await tdb.query(`SELECT to_regclass('must_not_exist') AS t`)).toEqual([{ t: null }]);
  });

  test('forgets a definition whose file is gone, so the same text brought back is applied again', async () => {
    await migrate(tdb.db.pool, { dir });
    const file = dir + 'definitions/completed_key.sql';
    const text = await readFile(file, 'utf8');
    await rm(file);
    await migrate(tdb.db.pool, { dir });
    expect(await tdb.query(`SELECT name FROM schema_definitions WHERE name = 'completed_key.sql'`)).toEqual([]);
    await tdb.query('DROP FUNCTION completed_key(bigint, text)');
    await writeFile(file, text);
    expect((await migrate(tdb.db.pool, { dir })).applied).toEqual(['definitions/completed_key.sql']);
    expect(await tdb.query(`SELECT to_regproc('completed_key') IS NOT NULL AS back`)).toEqual([{ back: true }]);
  });

  test('a definition whose signature changed leaves no function of its old signature behind', async () => {
    await migrate(tdb.db.pool, { dir });
    await writeFile(
      dir + 'definitions/idempotency_claim.sql',
      `CREATE OR REPLACE FUNCTION idempotency_claim(user_id bigint, key text, salt int) RETURNS boolean
       LANGUAGE sql VOLATILE AS $$ SELECT pg_try_advisory_xact_lock(hashtextextended(user_id::text || ':' || key, salt)) $$;`,
    );
    await migrate(tdb.db.pool, { dir });
    const left = await tdb.query<{ s: string }>(`SELECT oid::regprocedure::text AS s FROM pg_proc WHERE proname = 'idempotency_claim'`);
    expect(left).toEqual([{ s: 'idempotency_claim(bigint,text,integer)' }]);
  });

  test('a definition whose result changed replaces the function; one whose text is wrong still fails, changing nothing', async () => {
    await migrate(tdb.db.pool, { dir });
    const file = dir + 'definitions/completed_keys.sql';
    const text = await readFile(file, 'utf8');
    // Same arguments, another row type: CREATE OR REPLACE alone refuses it.
    await writeFile(file, text.replace('RETURNS TABLE (i bigint, completed json)', 'RETURNS TABLE (i bigint, completed json, found boolean)')
      .replace('FROM unnest(user_ids, keys)', ', false FROM unnest(user_ids, keys)'));
    expect((await migrate(tdb.db.pool, { dir })).applied).toEqual(['definitions/completed_keys.sql']);
    const cols = async () => (await tdb.query<{ c: string }>(
      `SELECT array_to_string(proargnames, ',') AS c FROM pg_proc WHERE proname = 'completed_keys'`)).map((r) => r.c);
    expect(await cols()).toEqual(['user_ids,keys,i,completed,found']);
    await writeFile(file, text.replace('RETURNS TABLE (i bigint, completed json)', 'RETURNS TABLE (i bigint)'));
    await expect(migrate(tdb.db.pool, { dir })).rejects.toThrow(/definition definitions\/completed_keys\.sql failed/);
    expect(await cols()).toEqual(['user_ids,keys,i,completed,found']);
  });

  test('0014 refuses ids that are not UUIDv7, naming the table, and changes nothing', async () => {
    // The schema as 0013 left it: 0014 and every migration after it taken out, put back after the row.
    const later = (await readdir(MIGRATIONS)).filter((f) => /^\d{4}_.*\.sql$/.test(f) && f >= '0014_');
    for (const f of later) await rm(dir + f);
    await migrate(tdb.db.pool, { dir });
    const [user] = await tdb.query<{ id: number }>(`INSERT INTO users (name) VALUES ('v4') RETURNING id`);
    await tdb.query(`INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, created_at)
                     VALUES (gen_random_uuid(), $1, 'PAID', 0, 0, 0, now())`, [user!.id]);
    for (const f of later) await cp(MIGRATIONS + f, dir + f);
    await expect(migrate(tdb.db.pool, { dir })).rejects.toThrow(/orders: 1 row\(s\) whose id is not a UUIDv7/);
    expect(await tdb.query(`SELECT relkind::text AS k, (SELECT count(*)::int FROM orders) AS n FROM pg_class WHERE relname = 'orders'`)).toEqual([{ k: 'r', n: 1 }]);
  });

  test('a definition file that defines another name fails and drops nothing', async () => {
    await migrate(tdb.db.pool, { dir });
    await writeFile(
      dir + 'definitions/completed_key.sql',
      `CREATE OR REPLACE FUNCTION completed_key_elsewhere(user_id bigint, key text) RETURNS json LANGUAGE sql AS $$ SELECT NULL::json $$;`,
    );
    await expect(migrate(tdb.db.pool, { dir })).rejects.toThrow(/definition definitions\/completed_key\.sql failed: it must define a function named completed_key/);
    const names = await tdb.query<{ proname: string }>(`SELECT proname FROM pg_proc WHERE proname LIKE 'completed_key%' ORDER BY 1`);
    expect(names).toEqual([{ proname: 'completed_key' }, { proname: 'completed_keys' }]);
  });
});
