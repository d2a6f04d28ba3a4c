import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { INSERTABLE_COLUMNS, insertSelect, type Table } from '../bulk-rows.ts';
import { ROLLUP_LOCK } from '../sales.ts';
import { paidEventSql } from './paid-event-sql.ts';

/**
 * `pnpm bench --scale`: a year of a running service's data written straight into the database with
 * a few set-based statements (generate_series, no round trip per row), so that the order path is
 * measured against big tables. At factor 1: 1,000,000 users, 100,000 products, 5,000,000 orders
 * over the 365 days before the run, each with its 1–3 items (in product order, as the service
 * writes them), its PAYMENT ledger entry and, for 5 % of them, a coupon copy it used; each user's
 * CHARGE; unused coupon copies; the best-seller rollup folded up to the seeded orders; and
 * delivered `order.paid` events for the last 7 days less an hour only (older ones the relay's
 * OUTBOX_RETENTION_DAYS would have purged; the hour keeps them clear of the purge during the run).
 * Idempotency keys are not seeded: the service forgets them after 48 h.
 *
 * Every value is a deterministic function of the row's number (hashint8extended, in the pg_temp
 * functions below), so each table is written by its own statement and still agrees with the
 * others. Keys, unique constraints, foreign keys and indexes are dropped first and re-created
 * afterwards from their own definitions (as pg_dump's restore does), each checked by PostgreSQL,
 * and the schema compared before and after. Then VACUUM (FREEZE, ANALYZE) and a CHECKPOINT, so no
 * catch-up vacuum or checkpoint falls into the measured windows.
 */

const FULL = { users: 1_000_000, products: 100_000, orders: 5_000_000, coupons: 20 };
const [HISTORY_DAYS, CHARGE, INITIAL_STOCK, COUPON_VALID_DAYS] = [365, 10_000_000, 1_000_000, 30];
export const DAY_MS = 86_400_000;
/** OUTBOX_RETENTION_DAYS' default. */
export const RETENTION_DAYS = 7;
/** Every table the seed writes (all but the idempotency keys); their keys, foreign keys and indexes are re-created after the load. */
export const HISTORY_TABLES = (Object.keys(INSERTABLE_COLUMNS) as Table[]).filter((t) => t !== 'idempotency_keys');
const ts = (ms: string) => `pg_temp.ts(${ms})`;

/**
 * The seed's deterministic functions, in pg_temp (this session only), plain SQL that PostgreSQL
 * inlines. h(x, s): 63 pseudo-random bits of x, one stream per s; o_user(k), o_ms(k): order k's
 * user and time (k-th slot of the history, so times rise with k); o_lines(k): 1–3 lines;
 * cand(k, m): its m-th product, distinct for m = 1..3 (stride < P/2); qty(k, j): 1, or 2 for one
 * line in ten; price(p): 1,000–49,000 won; u_ms(i), p_ms(i): sign-ups over the year before the
 * history, products in its last month; c_type(c), c_value(c): odd coupons FIXED 1,000–5,000 won,
 * even ones RATE 5–20 %; uuid7(ms, k, s): a UUIDv7 of time ms; iso(ms): JavaScript's toISOString().
 */
function functionsSql(p: { U: number; P: number; slot: number; historyStart: number }): string {
  const stride = Math.max(1, Math.floor((p.P - 1) / 2));
  const [userSlot, productSlot] = [Math.floor((HISTORY_DAYS * DAY_MS) / p.U), Math.floor((30 * DAY_MS) / p.P)];
  const fn = (sig: string, ret: string, body: string) => `CREATE FUNCTION pg_temp.${sig} RETURNS ${ret} LANGUAGE sql IMMUTABLE AS $f$ SELECT ${body} $f$;`;
  return [
    fn('h(x bigint, s bigint)', 'bigint', 'hashint8extended(x, s) & 9223372036854775807'),
    fn('ts(ms bigint)', 'timestamptz', `timestamptz 'epoch' + ms * interval '1 millisecond'`),
    fn('iso(ms bigint)', 'text', `to_char((timestamptz 'epoch' + ms * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`),
    fn('o_user(k bigint)', 'bigint', `1 + pg_temp.h(k, 1) % ${p.U}`),
    fn('o_ms(k bigint)', 'bigint', `${p.historyStart} + (k - 1) * ${p.slot} + pg_temp.h(k, 2) % ${p.slot}`),
    fn('o_lines(k bigint)', 'int', `1 + (pg_temp.h(k, 3) % ${Math.min(3, p.P)})::int`),
    fn('cand(k bigint, m int)', 'bigint', `1 + (pg_temp.h(k, 4) + (m - 1) * (1 + pg_temp.h(k, 5) % ${stride})) % ${p.P}`),
    fn('qty(k bigint, j int)', 'int', `CASE WHEN pg_temp.h(k * 4 + j, 6) % 10 = 0 THEN 2 ELSE 1 END`),
    fn('price(p bigint)', 'bigint', `1000 + (pg_temp.h(p, 7) % 49) * 1000`),
    fn('u_ms(i bigint)', 'bigint', `${p.historyStart - HISTORY_DAYS * DAY_MS} + (i - 1) * ${userSlot} + pg_temp.h(i, 8) % ${userSlot}`),
    fn('p_ms(i bigint)', 'bigint', `${p.historyStart - 30 * DAY_MS} + (i - 1) * ${productSlot} + pg_temp.h(i, 9) % ${Math.max(1, productSlot)}`),
    fn('c_type(c bigint)', 'text', `CASE WHEN c % 2 = 1 THEN 'FIXED' ELSE 'RATE' END`),
    fn('c_value(c bigint)', 'bigint', `CASE WHEN c % 2 = 1 THEN 1000 * (1 + pg_temp.h(c, 30) % 5) ELSE 5 + pg_temp.h(c, 31) % 16 END`),
    fn('uuid7(ms bigint, k bigint, s bigint)', 'uuid', `(lpad(to_hex(ms), 12, '0') || '7' || lpad(to_hex(pg_temp.h(k, s) % 4096), 3, '0')
        || to_hex(8 + pg_temp.h(k, s + 1) % 4) || lpad(to_hex(pg_temp.h(k, s + 2) % 1152921504606846976), 15, '0'))::uuid`),
  ].join('\n');
}

/** Line j's product of the order in row `r` (columns n, a, b, c): its candidates in product order. */
function lineProduct(r: string, j: string): string {
  const [a, b, c] = [`${r}.a`, `${r}.b`, `${r}.c`];
  return `CASE WHEN ${r}.n = 1 THEN ${a}
    WHEN ${r}.n = 2 THEN CASE WHEN ${j} = 1 THEN least(${a}, ${b}) ELSE greatest(${a}, ${b}) END
    WHEN ${j} = 1 THEN least(${a}, ${b}, ${c}) WHEN ${j} = 3 THEN greatest(${a}, ${b}, ${c})
    ELSE ${a} + ${b} + ${c} - least(${a}, ${b}, ${c}) - greatest(${a}, ${b}, ${c}) END`;
}
/** The lines of the order in row `r`, as `j` and `l.product_id`. */
const lines = (r: string) => `generate_series(1, ${r}.n) j CROSS JOIN LATERAL (SELECT ${lineProduct(r, 'j')} AS product_id OFFSET 0) l`;
/** Line j's amount (j a literal) of order k, from the lateral `x`. */
const lineAmount = (j: number) => `pg_temp.qty(k, ${j}) * pg_temp.price(${lineProduct('x', String(j))})`;

/** The seed's statements, in order; every table row through the adapter's columns (insertSelect). */
type Sizes = { U: number; P: number; N: number; C: number; historyStart: number; historyEnd: number; retainedSince: number };
function seedSteps(s: Sizes): Array<[string, string]> {
  const { U, N, C, historyStart, historyEnd } = s;
  const issued = `ms - pg_temp.h(k, 22) % ${15 * DAY_MS}`;
  return [
    ['coupons', insertSelect('coupons', {
      id: 'c', name: `'campaign ' || c`, discount_type: 'pg_temp.c_type(c)', discount_value: 'pg_temp.c_value(c)', total_quantity: '1000000000',
      issued_quantity: '0', min_order_amount: '0', valid_days: `${COUPON_VALID_DAYS}`, created_at: ts(`${historyStart} - ${DAY_MS}`),
    }, `FROM generate_series(1, ${C}) c`)],
    // 5 % of the orders used a coupon copy of their user's; a user holds one copy of a coupon, so a
    // second draw of the same (user, coupon) leaves its order without a coupon.
    ['staging: coupon uses', `CREATE UNLOGGED TABLE scale_seed_coupon_use AS
       SELECT DISTINCT ON (user_id, coupon) k, user_id, coupon FROM (
         SELECT k, pg_temp.o_user(k) AS user_id, 1 + pg_temp.h(k, 21) % ${C} AS coupon
         FROM generate_series(1, ${N}::bigint) k WHERE pg_temp.h(k, 20) % 20 = 0) s
       ORDER BY user_id, coupon, k`],
    ['staging: orders', `CREATE UNLOGGED TABLE scale_seed_orders AS
       SELECT k, pg_temp.uuid7(x.ms, k, 10) AS id, pg_temp.o_user(k) AS user_id, x.ms, x.n, x.a, x.b, x.c, t.total, u.coupon,
              CASE WHEN u.coupon IS NULL THEN 0
                   WHEN pg_temp.c_type(u.coupon) = 'FIXED' THEN least(pg_temp.c_value(u.coupon), t.total)
                   ELSE t.total * pg_temp.c_value(u.coupon) / 100 END AS discount
       FROM generate_series(1, ${N}::bigint) k
       CROSS JOIN LATERAL (SELECT pg_temp.o_ms(k) AS ms, pg_temp.o_lines(k) AS n, pg_temp.cand(k, 1) AS a, pg_temp.cand(k, 2) AS b,
                                  pg_temp.cand(k, 3) AS c OFFSET 0) x
       CROSS JOIN LATERAL (SELECT ${lineAmount(1)} + CASE WHEN x.n >= 2 THEN ${lineAmount(2)} ELSE 0 END
                                  + CASE WHEN x.n >= 3 THEN ${lineAmount(3)} ELSE 0 END AS total OFFSET 0) t
       LEFT JOIN scale_seed_coupon_use u USING (k)
       ORDER BY k`],
    ['orders', insertSelect('orders', {
      id: 'id', user_id: 'user_id', status: "'PAID'", total_amount: 'total', discount_amount: 'discount', paid_amount: 'total - discount',
      coupon_id: 'coupon', created_at: ts('ms'),
    }, 'FROM scale_seed_orders ORDER BY k')],
    ['order_items', insertSelect('order_items', {
      order_id: 's.id', line_no: 'j', product_id: 'l.product_id', quantity: 'pg_temp.qty(s.k, j)', unit_price: 'pg_temp.price(l.product_id)',
      line_amount: 'pg_temp.qty(s.k, j) * pg_temp.price(l.product_id)',
    }, `FROM scale_seed_orders s CROSS JOIN LATERAL ${lines('s')}`)],
    // Ids in time order: every user's CHARGE on sign-up, then the PAYMENTs in order; balance_after
    // runs down each user's payments.
    ['balance_ledger: CHARGE', insertSelect('balance_ledger', {
      id: 'i', user_id: 'i', type: "'CHARGE'", amount: `${CHARGE}`, balance_after: `${CHARGE}`, order_id: 'NULL', created_at: ts('pg_temp.u_ms(i)'),
    }, `FROM generate_series(1, ${U}::bigint) i`)],
    ['balance_ledger: PAYMENT', insertSelect('balance_ledger', {
      id: `${U} + k`, user_id: 'user_id', type: "'PAYMENT'", amount: '-(total - discount)',
      balance_after: `${CHARGE} - sum(total - discount) OVER (PARTITION BY user_id ORDER BY k)`, order_id: 'id', created_at: ts('ms'),
    }, 'FROM scale_seed_orders ORDER BY k')],
    ['users', insertSelect('users', { id: 'i', name: `'user ' || i`, balance: `${CHARGE} - coalesce(p.paid, 0)`, created_at: ts('pg_temp.u_ms(i)') },
      `FROM generate_series(1, ${U}::bigint) i
       LEFT JOIN (SELECT user_id, sum(total - discount) AS paid FROM scale_seed_orders GROUP BY user_id) p ON p.user_id = i
       ORDER BY i`)],
    // Stock as it stands after the seeded sales: initial stock − units sold.
    ['products', insertSelect('products', {
      id: 'i', name: `'product ' || i`, price: 'pg_temp.price(i)', stock: `${INITIAL_STOCK} - coalesce(s.sold, 0)`, created_at: ts('pg_temp.p_ms(i)'),
      updated_at: `coalesce(s.last_sale, ${ts('pg_temp.p_ms(i)')})`,
    }, `FROM generate_series(1, ${s.P}::bigint) i
       LEFT JOIN (SELECT l.product_id, sum(pg_temp.qty(o.k, j)) AS sold, ${ts('max(o.ms)')} AS last_sale
                  FROM scale_seed_orders o CROSS JOIN LATERAL ${lines('o')} GROUP BY l.product_id) s ON s.product_id = i
       ORDER BY i`)],
    ['user_coupons: used', insertSelect('user_coupons', {
      user_id: 'user_id', coupon_id: 'coupon', issued_at: ts(issued), expires_at: ts(`${issued} + ${COUPON_VALID_DAYS * DAY_MS}`),
      used_at: ts('ms'), order_id: 'id',
    }, 'FROM scale_seed_orders WHERE coupon IS NOT NULL ORDER BY k')],
    ['user_coupons: unused', insertSelect('user_coupons', {
      user_id: 'user_id', coupon_id: 'coupon', issued_at: ts('ms'), expires_at: ts(`ms + ${COUPON_VALID_DAYS * DAY_MS}`),
    }, `FROM (SELECT DISTINCT ON (user_id, coupon) user_id, coupon, ms FROM (
         SELECT j, 1 + pg_temp.h(j, 40) % ${U} AS user_id, 1 + pg_temp.h(j, 41) % ${C} AS coupon,
                ${historyStart} + pg_temp.h(j, 42) % ${historyEnd - historyStart} AS ms
         FROM generate_series(1, (SELECT count(*) FROM scale_seed_coupon_use)) j) g
       WHERE NOT EXISTS (SELECT 1 FROM scale_seed_coupon_use u WHERE u.user_id = g.user_id AND u.coupon = g.coupon)
       ORDER BY user_id, coupon, j) d`)],
    ['coupons: issued counts', `UPDATE coupons c SET issued_quantity = n.n, total_quantity = n.n + n.n / 10 + 1
       FROM (SELECT coupon_id, count(*)::int AS n FROM user_coupons GROUP BY coupon_id) n WHERE n.coupon_id = c.id`],
    ['outbox_events: delivered, last 7 days', insertSelect('outbox_events', {
      event_id: 'e.event_id', event_type: "'order.paid'", aggregate_id: 's.id::text', occurred_at: ts('s.ms'), created_at: ts('s.ms'),
      payload: paidEventSql({
        id: 'e.event_id', at: 'pg_temp.iso(s.ms)', orderId: 's.id', userId: 's.user_id', items: 'i.items', total: 's.total', discount: 's.discount',
        couponId: 's.coupon',
      }),
      attempts: '1', next_attempt_at: ts('s.ms + 30000'), last_error: 'NULL', delivered_at: ts('s.ms + 20 + pg_temp.h(s.k, 51) % 480'),
    }, `FROM scale_seed_orders s
       CROSS JOIN LATERAL (SELECT pg_temp.uuid7(s.ms, s.k, 50) AS event_id OFFSET 0) e
       CROSS JOIN LATERAL (
         SELECT jsonb_agg(jsonb_build_object('productId', l.product_id, 'quantity', pg_temp.qty(s.k, j), 'unitPrice', pg_temp.price(l.product_id),
                          'lineAmount', pg_temp.qty(s.k, j) * pg_temp.price(l.product_id)) ORDER BY j) AS items
         FROM ${lines('s')}) i
       WHERE s.ms >= ${s.retainedSince}
       ORDER BY s.k`)],
    // The rollup job's own fold (adapters-postgres/src/sales.ts) over every seeded order: the table
    // starts empty, so a plain INSERT instead of its ON CONFLICT (its key is re-created afterwards).
    ['product_sales_hourly: rollup fold', `WITH bounds AS (
         SELECT s.processed_until AS lo, pg_snapshot_xmin(pg_current_snapshot()) AS hi FROM rollup_state s WHERE s.name = 'product_sales_hourly'
       ), fresh AS (
         SELECT date_trunc('hour', o.created_at) AS hour, i.product_id, sum(i.quantity)::bigint AS quantity
         FROM orders o JOIN order_items i ON i.order_id = o.id, bounds b
         WHERE o.status = 'PAID' AND o.xact_id >= b.lo AND o.xact_id < b.hi
         GROUP BY 1, 2
       ), folded AS (
         ${insertSelect('product_sales_hourly', { hour: 'hour', product_id: 'product_id', quantity: 'quantity' }, 'FROM fresh RETURNING 1')}
       ), moved AS (
         UPDATE rollup_state SET processed_until = (SELECT hi FROM bounds) WHERE name = 'product_sales_hourly'
       )
       SELECT 1 FROM folded`],
  ];
}

/** Primary keys, unique constraints and foreign keys touching HISTORY_TABLES, and their other indexes. */
async function schemaOf(client: pg.Client) {
  const list = HISTORY_TABLES.map((t) => `'${t}'::regclass`).join(', ');
  const constraints = await client.query<{ table: string; name: string; type: string; def: string }>(`
    SELECT c.conrelid::regclass::text AS "table", quote_ident(c.conname) AS name, c.contype::text AS type, pg_get_constraintdef(c.oid) AS def
    FROM pg_constraint c WHERE c.contype IN ('p', 'u', 'f') AND (c.conrelid IN (${list}) OR c.confrelid IN (${list}))
      -- A partitioned table's own constraints: its partitions' copies come and go with them.
      AND c.conparentid = 0
    ORDER BY 1, 2`);
  // A partitioned table's index is described `ON ONLY` the table (pg_dump attaches its partitions'
  // one by one): re-created as written, its partitions would get none. Made without ONLY, it is made
  // on every partition; its validity (false while a partition lacks it) is compared too.
  const indexes = await client.query<{ table: string; name: string; def: string; valid: boolean }>(`
    SELECT i.indrelid::regclass::text AS "table", i.indexrelid::regclass::text AS name,
           replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS def, i.indisvalid AS valid
    FROM pg_index i WHERE i.indrelid IN (${list})
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
    ORDER BY 1, 2`);
  return { constraints: constraints.rows, indexes: indexes.rows };
}

const secondsSince = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;
export type HistoryStep = { step: string; seconds: number; rows?: number };
export type SeededHistory = Awaited<ReturnType<typeof seedHistory>>;

/**
 * Seeds the empty, migrated database at `databaseUrl` at `factor` × FULL (1 = full size; 0.01 for a quick check); `log` hears each step.
 * `seedStart`: the instant the history ends at (default now; another seed's `seededBefore` writes the same rows again, to the
 * millisecond of every id and time); `fingerprint`: also return each table's row count and hash (historyFingerprint), to compare.
 */
export async function seedHistory(
  databaseUrl: string, factor: number, log: (line: string) => void = () => undefined, o: { seedStart?: number; fingerprint?: boolean } = {},
) {
  if (!(factor > 0 && factor <= 10)) throw new Error(`--scale-factor must be in (0, 10], got ${factor}`);
  const size = (full: number, min: number) => Math.max(min, Math.round(full * factor));
  const [U, P, N, C] = [size(FULL.users, 10), size(FULL.products, 10), size(FULL.orders, 10), size(FULL.coupons, 2)];
  const seedStart = o.seedStart ?? Date.now();
  const historyEnd = seedStart - 60_000;
  const historyStart = historyEnd - HISTORY_DAYS * DAY_MS;
  const slot = Math.floor((historyEnd - historyStart) / N);
  if (slot < 2) throw new Error('too many orders for the history window');
  const retainedSince = seedStart - RETENTION_DAYS * DAY_MS + 3_600_000;

  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-scale-seed' });
  await client.connect();
  const q = (text: string, values?: unknown[]) => client.query(text, values);
  const steps: HistoryStep[] = [];
  const step = async (name: string, run: () => Promise<pg.QueryResult | void>) => {
    const t = performance.now();
    const r = await run();
    steps.push({ step: name, seconds: secondsSince(t), ...(r && r.rowCount !== null && r.command !== 'CREATE' ? { rows: r.rowCount } : {}) });
    log(`  ${name}: ${steps.at(-1)!.seconds} s`);
  };
  try {
    log(`seeding at scale ${factor}: ${U} users, ${P} products, ${N} orders…`);
    const counts = ['users', 'products', 'orders', 'coupons', 'balance_ledger', 'product_sales_hourly'].map((t) => `(SELECT count(*) FROM ${t})`);
    if (Number((await q(`SELECT ${counts.join(' + ')} AS n`)).rows[0].n) !== 0) {
      throw new Error('--scale needs a fresh database (users, products, orders, coupons, ledger and rollup empty)');
    }
    // The service's rollup job must not fold the seeded orders while they are being written: its
    // advisory lock is held until the seed has folded them itself.
    await q('SELECT pg_advisory_lock($1::int, $2::int)', [...ROLLUP_LOCK]);
    await q(`SET work_mem = '512MB'; SET maintenance_work_mem = '2GB'; SET synchronous_commit = off`);
    await q(functionsSql({ U, P, slot, historyStart }));

    // The history's partitions (migration 0014): months from the first user's sign-up, days for the retained events.
    const at = (ms: number) => new Date(ms).toISOString();
    await q(`SELECT ensure_partitions($1, now(), '{orders,order_items,balance_ledger}'), ensure_partitions($2, now(), '{outbox_events}')`,
      [at(historyStart - HISTORY_DAYS * DAY_MS), at(retainedSince)]);
    const schemaBefore = await schemaOf(client);
    const [keys, foreign] = [schemaBefore.constraints.filter((c) => c.type !== 'f'), schemaBefore.constraints.filter((c) => c.type === 'f')];
    await q('BEGIN');
    for (const c of foreign) await q(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
    for (const i of schemaBefore.indexes) await q(`DROP INDEX ${i.name}`);
    for (const c of keys) await q(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
    await q('COMMIT');

    for (const [name, sql] of seedSteps({ U, P, N, C, historyStart, historyEnd, retainedSince })) {
      if (name.startsWith('product_sales_hourly')) {
        // The fold takes the orders of transactions older than every running one: wait until the
        // seed's own transactions are (the service's are short).
        const past = `SELECT pg_snapshot_xmin(pg_current_snapshot()) > (SELECT xact_id FROM orders LIMIT 1) AS past`;
        while (!(await q(past)).rows[0].past) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await step(name, () => q(sql));
    }
    await q('DROP TABLE scale_seed_orders, scale_seed_coupon_use');
    // Keys first (the foreign keys need them), then indexes, then foreign keys, each checked.
    await step('keys, indexes, foreign keys re-created and checked', async () => {
      for (const c of [...keys, ...schemaBefore.indexes, ...foreign]) await q('type' in c ? `ALTER TABLE ${c.table} ADD CONSTRAINT ${c.name} ${c.def}` : c.def);
    });
    const schemaAfter = await schemaOf(client);
    const schemaUnchanged = JSON.stringify(schemaAfter) === JSON.stringify(schemaBefore);
    if (!schemaUnchanged) throw new Error(`the schema differs after seeding:\n${JSON.stringify(schemaBefore)}\n${JSON.stringify(schemaAfter)}`);
    for (const t of ['users', 'products', 'coupons', 'balance_ledger']) {
      await q(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
    }
    await q('SELECT pg_advisory_unlock($1::int, $2::int)', [...ROLLUP_LOCK]);
    await step('VACUUM (FREEZE, ANALYZE)', () => q(`VACUUM (FREEZE, ANALYZE) ${HISTORY_TABLES.join(', ')}, rollup_state`));
    let fingerprint = null as HistoryFingerprint | null;
    if (o.fingerprint) await step('fingerprint of every table (row counts, hashes)', async () => void (fingerprint = await historyFingerprint(client)));
    await step('CHECKPOINT', () => q('CHECKPOINT')).catch((err: Error) => log(`CHECKPOINT not allowed here (${err.message}); skipped`));
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      seeded: { users: U, products: P, orders: N, coupons: C },
      /** Every seeded product's stock before its seeded sales: ids 1..products. */
      initialStock: INITIAL_STOCK, steps, schemaUnchanged, fingerprint,
      history: { from: iso(historyStart), to: iso(historyEnd), eventsRetainedSince: iso(retainedSince), retentionDays: RETENTION_DAYS },
      /** Every seeded row was created before this: the run's own events are those created after. */
      seededBefore: iso(seedStart),
    };
  } finally {
    await client.end();
  }
}

/** Exact row counts and sizes of the seeded tables (and the idempotency keys), and the database's size. */
export async function historyTableSizes(pool: pg.Pool) {
  const [rows, tableBytes] = [{} as Record<string, number>, {} as Record<string, number>];
  for (const t of [...HISTORY_TABLES, 'idempotency_keys']) {
    // A partitioned table's own size is 0: its partitions' are summed (a plain table is its own tree).
    const r = (await pool.query(`SELECT (SELECT count(*) FROM ${t})::bigint AS n,
      (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('${t}')) AS bytes`)).rows[0];
    [rows[t], tableBytes[t]] = [Number(r.n), Number(r.bytes)];
  }
  const databaseBytes = Number((await pool.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
  return { rows, tableBytes, databaseBytes };
}

export type HistoryFingerprint = Record<string, { rows: number; hash: string }>;

/**
 * Each seeded table's row count and the sum of a hash of each row's insertable columns (those the
 * seed writes; not xact_id, seq or follows, which a database gives its rows itself), in name order
 * so that the columns' order in the table does not matter: equal on two databases when they hold
 * the same rows, whatever their tables' shape.
 */
export async function historyFingerprint(client: pg.Client | pg.Pool): Promise<HistoryFingerprint> {
  const out: HistoryFingerprint = {};
  for (const t of HISTORY_TABLES) {
    const row = [...INSERTABLE_COLUMNS[t]].sort().join(', ');
    const { rows } = await client.query<{ n: string; h: string | null }>(
      `SELECT count(*) AS n, sum(hashtextextended(row(${row})::text, 0)::numeric)::text AS h FROM ${t}`);
    out[t] = { rows: Number(rows[0]!.n), hash: rows[0]!.h ?? '0' };
  }
  return out;
}

/** The tables whose rows differ between two fingerprints, each as a sentence (none: the same rows). */
export const fingerprintDifferences = (a: HistoryFingerprint, b: HistoryFingerprint) =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((t) => a[t]?.rows !== b[t]?.rows || a[t]?.hash !== b[t]?.hash)
    .map((t) => `${t}: ${a[t]?.rows ?? 'no'} rows (hash ${a[t]?.hash}) against ${b[t]?.rows ?? 'no'} rows (hash ${b[t]?.hash})`);
