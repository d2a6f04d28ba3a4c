import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { orderPathPlans, type ScalePlan } from './scale-plans.ts';
import { functionsSql, schemaOf, seedSteps } from './scale-sql.ts';
import { seedThroughApi, type Seeded } from './seed.ts';
import { seededRandom } from './stats.ts';
import type { Target } from './target.ts';

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
 * Every value is a deterministic function of the row's number (hashint8extended), so each table is
 * written by its own statement and still agrees with the others. Keys, unique constraints, foreign
 * keys and indexes are dropped first and re-created afterwards from their own definitions (as
 * pg_dump's restore does), each checked by PostgreSQL as it is re-created, and the schema compared
 * before and after; CHECK constraints stay. Then VACUUM (FREEZE, ANALYZE) and a CHECKPOINT, so no
 * catch-up vacuum or checkpoint falls into the measured windows. The load draws as many users and
 * products as the default run's at random from the whole tables; its hot products and coupons are
 * created through the admin API, as in the default run.
 */

export const SCALE_FULL = { users: 1_000_000, products: 100_000, orders: 5_000_000, coupons: 20 } as const;
const HISTORY_DAYS = 365;
/** OUTBOX_RETENTION_DAYS' default. */
export const RETENTION_DAYS = 7;
const INITIAL_STOCK = 1_000_000;
export const DAY_MS = 86_400_000;
/** The best-seller rollup's advisory lock (packages/adapters-postgres/src/sales.ts). */
export const ROLLUP_LOCK = [0x5e7a11, 2] as const;
/** Every table the seed writes; their keys, foreign keys and indexes are re-created after the load. */
const TABLES = ['users', 'products', 'coupons', 'orders', 'order_items', 'user_coupons', 'balance_ledger', 'outbox_events', 'product_sales_hourly'];

export interface ScaleInfo {
  readonly factor: number;
  readonly seeded: { users: number; products: number; orders: number; coupons: number };
  /** Exact row counts and sizes after seeding (and after the API created the run's own rows). */
  readonly rows: Record<string, number>;
  readonly tableBytes: Record<string, number>;
  readonly databaseBytes: number;
  readonly seedingSeconds: number;
  readonly steps: Array<{ step: string; seconds: number; rows?: number }>;
  readonly history: { from: string; to: string; eventsRetainedSince: string; retentionDays: number };
  /** Every seeded row was created before this: the run's own events are those created after. */
  readonly seededBefore: string;
  readonly load: { users: number; products: number; couponHolders: number };
  readonly schemaUnchanged: boolean;
  readonly plans: ScalePlan[];
  /** `table (statement)` for every Seq Scan on a big table in the order path's plans; empty = none. */
  readonly seqScansOnBigTables: string[];
  /** The same for the background jobs' plans (relay, best-seller rollup). */
  readonly seqScansOffOrderPath: string[];
}

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const secondsSince = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;
const n = (x: number) => x.toLocaleString('en-US');

/** Seeds the target's database at `factor` × SCALE_FULL (1 = full size; 0.01 for a quick check). */
export async function seedAtScale(target: Target, factor: number, load: { users: number; products: number }): Promise<Seeded & { scale: ScaleInfo }> {
  if (!(factor > 0 && factor <= 10)) throw new Error(`--scale-factor must be in (0, 10], got ${factor}`);
  const size = (full: number, min: number) => Math.max(min, Math.round(full * factor));
  const [U, P, N, C] = [size(SCALE_FULL.users, 10), size(SCALE_FULL.products, 10), size(SCALE_FULL.orders, 10), size(SCALE_FULL.coupons, 2)];
  const t0 = performance.now();
  const seedStart = Date.now();
  const historyEnd = seedStart - 60_000;
  const historyStart = historyEnd - HISTORY_DAYS * DAY_MS;
  const slot = Math.floor((historyEnd - historyStart) / N);
  if (slot < 2) throw new Error('too many orders for the history window');
  const retainedSince = seedStart - RETENTION_DAYS * DAY_MS + 3_600_000;

  const client = new pg.Client({ connectionString: target.databaseUrl, application_name: 'bench-scale-seed' });
  await client.connect();
  const q = (text: string, values?: unknown[]) => client.query(text, values);
  const steps: ScaleInfo['steps'] = [];
  const step = async (name: string, text: string) => {
    const t = performance.now();
    const r = await q(text);
    const s = { step: name, seconds: secondsSince(t), ...(r.rowCount !== null && r.command !== 'CREATE' ? { rows: r.rowCount } : {}) };
    steps.push(s);
    log(`${name}: ${s.seconds} s${s.rows !== undefined ? `, ${n(s.rows)} rows` : ''}`);
  };
  try {
    process.stderr.write(`seeding at scale ${factor}: ${n(U)} users, ${n(P)} products, ${n(N)} orders…\n`);
    const empty = await q(`SELECT ${['users', 'products', 'orders', 'coupons', 'balance_ledger', 'product_sales_hourly'].map((t) => `(SELECT count(*) FROM ${t})`).join(' + ')} AS n`);
    if (Number(empty.rows[0].n) !== 0) throw new Error('--scale needs a fresh database (users, products, orders, coupons, ledger and rollup empty)');
    // The service's rollup job must not fold the seeded orders while they are being written: its
    // advisory lock is held until the seed has folded them itself.
    await q('SELECT pg_advisory_lock($1::int, $2::int)', [...ROLLUP_LOCK]);
    await q(`SET work_mem = '512MB'; SET maintenance_work_mem = '2GB'; SET synchronous_commit = off`);
    await q(functionsSql({ U, P, C, slot, historyStart, userSlot: Math.floor((HISTORY_DAYS * DAY_MS) / U), productSlot: Math.floor((30 * DAY_MS) / P) }));

    const schemaBefore = await schemaOf(client, TABLES);
    const [keys, foreign] = [schemaBefore.constraints.filter((c) => c.type !== 'f'), schemaBefore.constraints.filter((c) => c.type === 'f')];
    await q('BEGIN');
    for (const c of foreign) await q(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
    for (const i of schemaBefore.indexes) await q(`DROP INDEX ${i.name}`);
    for (const c of keys) await q(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
    await q('COMMIT');

    for (const [name, sql] of seedSteps({ U, P, N, C, historyStart, historyEnd, retainedSince })) {
      if (name === 'product_sales_hourly: rollup fold') {
        // The fold takes the orders of transactions older than every running one: wait until the
        // seed's own transactions are (the service's are short).
        const past = `SELECT pg_snapshot_xmin(pg_current_snapshot()) > (SELECT xact_id FROM orders LIMIT 1) AS past`;
        while (!(await q(past)).rows[0].past) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await step(name, sql);
    }
    await q('DROP TABLE scale_seed_orders, scale_seed_coupon_use');

    // Keys first (the foreign keys need them), then indexes, then foreign keys, each checked.
    const tRebuild = performance.now();
    for (const c of [...keys, ...schemaBefore.indexes, ...foreign]) await q('type' in c ? `ALTER TABLE ${c.table} ADD CONSTRAINT ${c.name} ${c.def}` : c.def);
    steps.push({ step: 'keys, indexes, foreign keys re-created and checked', seconds: secondsSince(tRebuild) });
    log(`keys, indexes, foreign keys re-created and checked: ${secondsSince(tRebuild)} s`);
    const schemaAfter = await schemaOf(client, TABLES);
    const schemaUnchanged = JSON.stringify(schemaAfter) === JSON.stringify(schemaBefore);
    if (!schemaUnchanged) throw new Error(`the schema differs after seeding:\n${JSON.stringify(schemaBefore)}\n${JSON.stringify(schemaAfter)}`);
    for (const t of ['users', 'products', 'coupons', 'balance_ledger']) await q(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
    await q('SELECT pg_advisory_unlock($1::int, $2::int)', [...ROLLUP_LOCK]);
    await step('VACUUM (FREEZE, ANALYZE)', `VACUUM (FREEZE, ANALYZE) ${TABLES.join(', ')}, rollup_state`);
    await step('CHECKPOINT', 'CHECKPOINT').catch((err: Error) => log(`CHECKPOINT not allowed here (${err.message}); skipped`));
    const seedingSeconds = secondsSince(t0);
    log(`seeded in ${seedingSeconds} s`);

    // The load's users and products: random samples spread over the whole tables; its own hot
    // products and coupons through the admin API, as in the default run.
    const initialStock = new Map(Array.from({ length: P }, (_, i) => [i + 1, INITIAL_STOCK] as [number, number]));
    const userIds = sample(U, Math.min(U, load.users), seededRandom(11));
    const productIds = sample(P, Math.min(P, load.products), seededRandom(12)).sort((a, b) => a - b);
    const couponHolders = Math.max(1, Math.floor(userIds.length / 50));
    const seeded = await seedThroughApi(target, { users: 0, products: 0, couponHolders }, initialStock, { userIds, productIds });

    const middle = [productIds[Math.floor(productIds.length / 3)]!, productIds[Math.floor((2 * productIds.length) / 3)]!, productIds.at(-1)!];
    const plans = await orderPathPlans(target.databaseUrl, userIds[0]!, middle, userIds.slice(1, 33), P);
    const seqScansOf = (orderPath: boolean) => plans.filter((p) => p.orderPath === orderPath).flatMap((p) => p.seqScans.map((t) => `${t} (${p.what})`));
    const [seqScansOnBigTables, seqScansOffOrderPath] = [seqScansOf(true), seqScansOf(false)];
    process.stderr.write(`order path plans: ${seqScansOnBigTables.length === 0 ? 'no Seq Scan on a big table' : `Seq Scan on ${seqScansOnBigTables.join('; ')}`}\n`);
    if (seqScansOffOrderPath.length > 0) process.stderr.write(`background jobs' plans: Seq Scan on ${seqScansOffOrderPath.join('; ')}\n`);

    const rows: Record<string, number> = {};
    const tableBytes: Record<string, number> = {};
    for (const t of [...TABLES, 'idempotency_keys']) {
      const r = (await q(`SELECT count(*)::bigint AS n, pg_total_relation_size('${t}') AS bytes FROM ${t}`)).rows[0];
      [rows[t], tableBytes[t]] = [Number(r.n), Number(r.bytes)];
    }
    const databaseBytes = Number((await q('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
    const iso = (ms: number) => new Date(ms).toISOString();
    const scale: ScaleInfo = {
      factor,
      seeded: { users: U, products: P, orders: N, coupons: C },
      rows,
      tableBytes,
      databaseBytes,
      seedingSeconds,
      steps,
      history: { from: iso(historyStart), to: iso(historyEnd), eventsRetainedSince: iso(retainedSince), retentionDays: RETENTION_DAYS },
      seededBefore: iso(seedStart),
      load: { users: userIds.length, products: productIds.length, couponHolders },
      schemaUnchanged,
      plans,
      seqScansOnBigTables,
      seqScansOffOrderPath,
    };
    return { ...seeded, scale };
  } finally {
    await client.end();
  }
}

/** `k` distinct ids out of 1..n, uniformly (Floyd's algorithm), in random order. */
function sample(n: number, k: number, rand: () => number): number[] {
  const chosen = new Set<number>();
  for (let j = n - k + 1; j <= n; j++) {
    const t = 1 + Math.floor(rand() * j);
    chosen.add(chosen.has(t) ? j : t);
  }
  const out = [...chosen];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
