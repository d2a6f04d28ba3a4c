import { expect } from 'vitest';
import type { TestDatabase } from './database.ts';

/** Row count and an md5 of every row, per table of the public schema but the migrations' own. */
export type Fingerprint = Record<string, { rows: number; md5: string }>;

/**
 * The whole database, table by table, ordered by primary key: equal before and after a request
 * means the request wrote nothing. Only sound while nothing else writes (the relay off, the
 * sales rollup idle).
 */
export async function fingerprint(tdb: TestDatabase): Promise<Fingerprint> {
  const tables = await tdb.query<{ table_name: string; pk: string }>(`
    SELECT t.table_name, string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey::int2[], a.attnum)) AS pk
    FROM information_schema.tables t
    JOIN pg_index i ON i.indrelid = format('%I.%I', t.table_schema, t.table_name)::regclass AND i.indisprimary
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND t.table_name <> 'schema_migrations'
    GROUP BY t.table_name
    ORDER BY t.table_name`);
  // Every table has a primary key; a table without one would silently drop out of the join above.
  const [{ n }] = (await tdb.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'`,
  )) as [{ n: number }];
  expect(tables.length, 'tables without a primary key').toBe(n);
  const snap: Fingerprint = {};
  for (const { table_name, pk } of tables) {
    const [row] = await tdb.query<{ rows: number; md5: string }>(
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${pk}), '')) AS md5
       FROM ${table_name} t`,
    );
    snap[table_name] = row!;
  }
  return snap;
}
