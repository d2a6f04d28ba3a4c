import { expect, test } from 'vitest';
import { analyzeOutgrownPartitions, ensurePartitions, migrate, openDatabase, pgIdempotencyKeyPurge } from '../src/index.ts';
import { createTestDatabase } from '../../../test/support/database.ts';

// The catalog queries name the current schema as an identifier (to_regnamespace(quote_ident(…))):
// `current_schema()::regnamespace` folds an unquoted name to lower case, so a schema whose name
// needs quotes was not found, and migrating, purging and analyzing failed in it.
test('migrates (twice), purges and analyzes its partitions in a schema named in mixed case', async () => {
  const tdb = await createTestDatabase({ migrate: false });
  await tdb.query('CREATE SCHEMA "ShopFront"');
  const url = new URL(tdb.url);
  url.searchParams.set('options', '-c search_path="ShopFront"');
  const db = openDatabase({ connectionString: url.toString(), max: 2 });
  try {
    await migrate(db.pool);
    // Again: the history found and its checksums compared in that schema, nothing applied twice.
    expect((await migrate(db.pool)).applied).toEqual([]);
    const tables = async (schema: string, like = '%') =>
      (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2`, [schema, like]))[0]!.n;
    expect(await tables('ShopFront')).toBeGreaterThan(10);
    expect(await tables('public')).toBe(0);
    await ensurePartitions(db.kysely);
    // Today's keys outgrow their statistics: the analyze step finds the partition in this schema.
    await db.pool.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
                         SELECT g, 'key-' || g, 'print', '{}'::jsonb FROM generate_series(1, 3000) g`);
    const { analyzed, skipped } = await analyzeOutgrownPartitions(db.kysely);
    expect(skipped).toEqual([]);
    expect(analyzed.some((part) => part.startsWith('idempotency_keys_p'))).toBe(true);
    // The purge lists the days in this schema: every row counted as expired by a date far ahead, and the oldest day dropped.
    const purge = pgIdempotencyKeyPurge(db.kysely);
    const later = new Date(Date.now() + 30 * 86_400_000);
    expect(await purge.estimateExpired(new Date(0))).toBe(0);
    expect(await purge.estimateExpired(later)).toBe(3000);
    const days = await tables('ShopFront', 'idempotency\\_keys\\_p%');
    expect(days).toBeGreaterThan(1);
    await expect(purge.purgeBatch(later, 1000, null)).resolves.toMatchObject({ done: false });
    expect(await tables('ShopFront', 'idempotency\\_keys\\_p%')).toBe(days - 1);
  } finally {
    await db.close();
    await tdb.drop();
  }
});
