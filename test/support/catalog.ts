import type pg from 'pg';

/**
 * Everything of a database's schema that its code can see, as comparable text: tables and their
 * columns (type, nullability, default, identity, in order), constraints, indexes, sequences,
 * functions (whole definitions and settings), views and triggers; of a partitioned table, its
 * partition key, not its partitions (which periods have one depends on its rows and on when it was
 * made). Two databases with equal descriptions answer every statement of the service alike.
 */
export async function describeCatalog(pool: pg.Pool): Promise<Record<string, string[]>> {
  const q = async (text: string) => (await pool.query<{ d: string }>(text)).rows.map((r) => r.d);
  return {
    columns: await q(`
      SELECT c.relname || '.' || a.attname || ' #' || a.attnum || ' ' || format_type(a.atttypid, a.atttypmod)
             || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
             || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
             || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END
             || coalesce(' collate ' || nullif(co.collname, 'default'), '') AS d
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
       WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY 1`),
    constraints: await q(`
      SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS d
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conparentid = 0
         AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = conrelid AND c.relispartition) ORDER BY 1`),
    indexes: await q(`
      SELECT i.indexdef AS d FROM pg_indexes i JOIN pg_class c ON c.oid = (quote_ident(i.schemaname) || '.' || quote_ident(i.tablename))::regclass
       WHERE i.schemaname = 'public' AND NOT c.relispartition ORDER BY 1`),
    partitioned: await q(`
      SELECT c.relname || ' ' || pg_get_partkeydef(c.oid) AS d FROM pg_class c
       WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'p' ORDER BY 1`),
    sequences: await q(`
      SELECT sequencename || ' ' || data_type || ' ' || increment_by || ' ' || min_value || ' ' || max_value AS d
        FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1`),
    functions: await q(`
      SELECT pg_get_functiondef(p.oid) AS d FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace ORDER BY p.oid::regprocedure::text`),
    views: await q(`SELECT viewname || ' ' || definition AS d FROM pg_views WHERE schemaname = 'public' ORDER BY 1`),
    triggers: await q(`
      SELECT pg_get_triggerdef(t.oid) AS d FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
       WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal ORDER BY 1`),
  };
}
