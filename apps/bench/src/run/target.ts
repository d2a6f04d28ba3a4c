import { randomBytes } from 'node:crypto';
import { openDatabase, type Db } from '@shop/adapters-postgres';
import { addCoupon, addProducts, addUsers, grantCoupon, readsStatements, scratchDatabase } from '@shop/adapters-postgres/bench';
import { startBenchReplication, type ScalingTarget } from '@shop/local-clusters/bench';
import { startApiProcess } from '../../../../test/support/processes.ts';
import { Receiver } from '../../../../test/support/receiver.ts';
import { seededRandom } from './stats.ts';

/** A fresh, migrated database, dropped on close: on DATABASE_URL's server when given, else on an embedded PostgreSQL; unpartitioned: the reference. */
export const benchDatabase = async (on?: { primaryUrl: string; description: string } | null, admin = on?.primaryUrl ?? (process.env.DATABASE_URL || null),
  unpartitioned = false) => ({ ...(await scratchDatabase(admin, { unpartitioned })), where: on?.description ?? (admin ? 'DATABASE_URL' : 'embedded PostgreSQL') });
export type BenchDatabase = Awaited<ReturnType<typeof benchDatabase>>;

export type Target = Awaited<ReturnType<typeof startTarget>>;

/** The service: with --url a running one (DATABASE_URL its database, AUTH_SECRET its secret), else apps/api on a fresh database, events to a receiver
 * (with `replica`, on a primary with a streaming replica started here; with `beside`, the unpartitioned reference on that server); a workload may start it again with settings of its own. */
export async function startTarget(o: { url?: string; poolSize: number; orderWrites: number; cpuProfileDir: string | null; replica?: boolean; beside?: string | null }) {
  if (o.url) {
    const { DATABASE_URL: databaseUrl, AUTH_SECRET: authSecret } = process.env;
    if (!databaseUrl || !authSecret) throw new Error('--url needs DATABASE_URL (its database) and AUTH_SECRET (its secret)');
    const { pool, close } = openDatabase({ connectionString: databaseUrl, max: 4, applicationName: 'bench' }); // bigint ids read as numbers
    return {
      baseUrl: o.url, authSecret, databaseUrl, pool, receiver: null as Receiver | null, description: `service at ${o.url}`, adminUrl: null as string | null,
      servicePid: null as number | null, statements: await readsStatements(pool, false), close, replica: null as ScalingTarget['replica'],
      restart: (): Promise<void> => Promise.reject(new Error('this workload needs the benchmark to start the service (no --url)')) };
  }
  const replication = o.replica ? await startBenchReplication() : null;
  const database = await benchDatabase(replication, replication?.primaryUrl ?? (o.beside !== undefined ? o.beside : process.env.DATABASE_URL || null), 'beside' in o);
  const [receiver, authSecret] = [await new Receiver().start(), randomBytes(32).toString('base64url')];
  const env = {
    AUTH_SECRET: authSecret, DATA_PLATFORM_URL: receiver.url, LOG_LEVEL: 'info',
    DATABASE_POOL_SIZE: String(o.poolSize), ORDER_WRITES_IN_FLIGHT: String(o.orderWrites),
    // All load comes from one address: the per-address limits (rate, connections) would measure themselves.
    RATE_LIMIT_IP_PER_SEC: '0', MAX_CONNECTIONS_PER_ADDRESS: '0', RATE_LIMIT_USER_PER_SEC: '20',
    BENCH_FLOOR_ROUTE: '1', // the floor workload's POST /bench/floor, which no deployment has
    ...(o.cpuProfileDir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.cpuProfileDir}` } : {}), // written as it exits
  };
  let api = await startApiProcess(database.url, env);
  const target = {
    baseUrl: api.url, authSecret, databaseUrl: database.url, receiver: receiver as Receiver | null, servicePid: api.child.pid ?? null,
    pool: database.db.pool, adminUrl: database.admin as string | null, // the pool: for the audit and the run's own observations, never for load
    description: `apps/api started by the benchmark on ${database.where}, events to a local HTTP receiver`, statements: database.statements,
    replica: replication?.replicaOf(database.url) ?? null,
    async restart(extra: Readonly<Record<string, string>>) {
      await api.stop();
      api = await startApiProcess(database.url, { ...env, ...extra });
      [target.baseUrl, target.servicePid] = [api.url, api.child.pid ?? null];
    },
    async close() {
      await api.stop();
      await receiver.stop();
      await database.close();
      await replication?.stop();
    },
  };
  return target;
}

export const HOT_STOCK = 5_000;
export const BURST_COUPONS = 100;

/** Users charged 10,000,000 won (a CHARGE entry each), products priced 1,000–49,000 won by a seeded generator; their stock joins `initialStock`. */
function rows(pool: Db['pool'], initialStock: Map<number, number>) {
  const rand = seededRandom(7);
  const products = async (names: string[], stock = 1_000_000, price?: number) => {
    const ids = await addProducts(pool, names.map((name) => ({ name, price: price ?? 1_000 + Math.floor(rand() * 49) * 1_000, stock })));
    for (const id of ids) initialStock.set(id, stock);
    return ids;
  };
  return {
    products, users: (n: number, prefix: string) => addUsers(pool, n, prefix, 10_000_000),
    numbered: (n: number, prefix: string) => products(Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`)),
  };
}

export type Fixture = Awaited<ReturnType<typeof seedFixture>>['fixture'];

/**
 * The run's data: users and products (unless `drawn` at scale), a HOT_STOCK product per hot run, coupon-burst's coupon (BURST_COUPONS copies), and
 * two RATE coupons granted to `couponHolders` users: mixed's, and refund's (whose copies come back with every cancel; mixed's orders keep theirs).
 */
export async function seedFixture(
  pool: Db['pool'], size: { users: number; products: number; couponHolders: number }, initialStock = new Map<number, number>(),
  drawn?: { userIds: number[]; productIds: number[] },
) {
  const add = rows(pool, initialStock);
  const userIds: readonly number[] = drawn?.userIds ?? (await add.users(size.users, 'bench user'));
  const productIds: readonly number[] = drawn?.productIds ?? (await add.numbered(size.products, 'bench product'));
  const runs = { service: '', keyed: ' (keyed orders)', serviceSql: ' (ceiling, service SQL)', plainRowLock: ' (ceiling, plain row lock)' };
  const hotIds = await add.products(Object.values(runs).map((r) => `hot product${r}`), HOT_STOCK, 9_900);
  const hot = Object.fromEntries(Object.keys(runs).map((k, i) => [k, hotIds[i]!])) as Record<keyof typeof runs, number>;
  const couponId = await addCoupon(pool, 'flash 100', BURST_COUPONS);
  const mixedCouponId = await addCoupon(pool, 'mixed 10%', Math.max(1, size.couponHolders), { type: 'RATE', value: 10 });
  const refundCouponId = await addCoupon(pool, 'refund 10%', Math.max(1, size.couponHolders), { type: 'RATE', value: 10 });
  const couponHolders: readonly number[] = userIds.slice(0, size.couponHolders);
  for (const c of [mixedCouponId, refundCouponId]) await grantCoupon(pool, c, couponHolders);
  return { fixture: { userIds, productIds, hot, couponId, couponHolders, mixedCouponId, refundCouponId }, initialStock };
}

export type PgbenchRows = Awaited<ReturnType<typeof seedPgbenchRows>>;

/** pgbench's users, products and hot product, as the service's, each set's ids consecutive (it draws them with random(first, last)). */
export async function seedPgbenchRows(pool: Db['pool'], size: { users: number; products: number }, initialStock: Map<number, number>) {
  const add = rows(pool, initialStock);
  const range = (ids: number[], what: string) => {
    const [first, last] = [ids[0]!, ids.at(-1)!];
    if (last - first + 1 !== ids.length) throw new Error(`pgbench's ${what} ids are not consecutive (${first}..${last} for ${ids.length})`);
    return { first, last };
  };
  const users = range(await add.users(size.users, 'pgbench user'), 'users');
  const products = range(await add.numbered(size.products, 'pgbench product'), 'products');
  return { users, products, hotProductId: (await add.products(['hot product (pgbench)'], HOT_STOCK, 9_900))[0]! };
}
