import { expect, test } from 'vitest';
import { analyzeOutgrownPartitions, ensurePartitions, migrate, openDatabase, pgIdempotencyKeyPurge } from '../src/index.ts';
import { createTestDatabase } from '../../../test/support/database.ts';

// The catalog queries name the current schema as an identifier (to_regnamespace(quote_ident(…))):
// `current_schema()::regnamespace` folds an unquoted name to lower case, so a schema whose name
// needs quotes was not found, and migrating, purging and analyzing failed in it.
test('migrates twice, keeps, purges and analyzes its partitions in a schema named in mixed case', async () => {
  const tdb = await createTestDatabase({ migrate: false });
  await tdb.query('CREATE SCHEMA "ShopFront"');
  const url = new URL(tdb.url);
  url.searchParams.set('options', '-c search_path="ShopFront"');
  const db = openDatabase({ connectionString: url.toString(), max: 2 });
  try {
    await migrate(db.pool);
    // Again: every definition's text compared with the catalog's, in that schema.
    await migrate(db.pool);
    const tables = async (schema: string) =>
      (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`, [schema]))[0]!.n;
    expect(await tables('ShopFront')).toBeGreaterThan(10);
    expect(await tables('public')).toBe(0);
    await ensurePartitions(db.kysely);
    const purge = pgIdempotencyKeyPurge(db.kysely);
    const now = new Date();
    expect(await purge.estimateExpired(now)).toBe(0);
    await expect(purge.purgeBatch(now, 1000, null)).resolves.toMatchObject({ deleted: 0 });
    await expect(analyzeOutgrownPartitions(db.kysely)).resolves.toEqual({ analyzed: [], skipped: [] });
  } finally {
    await db.close();
    await tdb.drop();
  }
});
