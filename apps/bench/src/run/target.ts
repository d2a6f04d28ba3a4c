import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { readsStatements, scratchDatabase } from '@shop/adapters-postgres/bench';
import { startApiProcess } from '../../../../test/support/processes.ts';
import { Receiver } from '../../../../test/support/receiver.ts';
import { seededRandom } from './stats.ts';

/** A fresh, migrated database, dropped on close: on DATABASE_URL's server when given, else on an embedded PostgreSQL. */
export async function benchDatabase() {
  const admin = process.env.DATABASE_URL || null;
  return { ...(await scratchDatabase(admin)), where: admin ? 'DATABASE_URL' : 'embedded PostgreSQL' };
}
export type BenchDatabase = Awaited<ReturnType<typeof benchDatabase>>;

export type Target = Awaited<ReturnType<typeof startTarget>>;

/**
 * The service under test. With --url, the user's running service (DATABASE_URL names its database,
 * AUTH_SECRET its secret). Otherwise apps/api started here on a fresh database, delivering its
 * events to a local receiver, so event delivery is part of what is measured.
 */
export async function startTarget(o: { url?: string; poolSize: number; orderWrites: number; cpuProfileDir: string | null }) {
  if (o.url) {
    const { DATABASE_URL: databaseUrl, AUTH_SECRET: authSecret } = process.env;
    if (!databaseUrl || !authSecret) throw new Error('--url needs DATABASE_URL (its database) and AUTH_SECRET (its secret)');
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    return {
      baseUrl: o.url, authSecret, databaseUrl, pool, receiver: null as Receiver | null, description: `service at ${o.url}`,
      servicePid: null as number | null, statements: await readsStatements(pool, false), close: () => pool.end(),
    };
  }
  const database = await benchDatabase();
  const receiver = await new Receiver().start();
  const authSecret = randomBytes(32).toString('base64url');
  const api = await startApiProcess(database.url, {
    AUTH_SECRET: authSecret, DATA_PLATFORM_URL: receiver.url, LOG_LEVEL: 'info',
    DATABASE_POOL_SIZE: String(o.poolSize), ORDER_WRITES_IN_FLIGHT: String(o.orderWrites),
    // All load comes from one address: the per-address limits (rate, connections) would measure
    // themselves. The per-user limit stays at the production default.
    RATE_LIMIT_IP_PER_SEC: '0', MAX_CONNECTIONS_PER_ADDRESS: '0', RATE_LIMIT_USER_PER_SEC: '20',
    ...(o.cpuProfileDir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.cpuProfileDir}` } : {}), // written as it exits
  });
  return {
    baseUrl: api.url, authSecret, databaseUrl: database.url, receiver: receiver as Receiver | null, servicePid: api.child.pid ?? null,
    /** For the audit and the run's own observations, never for load. */
    pool: database.db.pool,
    description: `apps/api started by the benchmark on ${database.where}, events to a local HTTP receiver`, statements: database.statements,
    async close() {
      await api.stop();
      await receiver.stop();
      await database.close();
    },
  };
}

type Api = { readonly baseUrl: string; readonly authSecret: string };
export const HOT_STOCK = 5_000;
export const BURST_COUPONS = 100;

/**
 * The admin API, 32 requests at a time, as an operator would create the data. Users are charged
 * through the API, so each has its CHARGE ledger entry; products are priced 1,000 to 49,000 won
 * from a seeded generator, the same for the service's products and pgbench's.
 */
async function adminApi(target: Api, initialStock: Map<number, number>) {
  const admin = `Bearer ${await signToken(new TextEncoder().encode(target.authSecret), { admin: true })}`;
  const pool = new Pool(target.baseUrl, { connections: 32 });
  const post = async (path: string, body: unknown): Promise<any> => {
    const res = await pool.request({ method: 'POST', path, headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`seed ${path}: ${res.statusCode} ${text}`);
    return JSON.parse(text);
  };
  const many = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
    const out = new Array<T>(n);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let i = next++; i < n; i = next++) out[i] = await make(i);
    }));
    return out;
  };
  const rand = seededRandom(7);
  const product = async (name: string, price = 1_000 + Math.floor(rand() * 49) * 1_000, stock = 1_000_000) => {
    const { productId } = await post('/admin/products', { name, price, stock });
    initialStock.set(productId, stock);
    return productId as number;
  };
  return {
    post, many, product, close: () => pool.close(),
    users: (n: number, prefix: string) => many(n, async (i) => {
      const { userId } = await post('/admin/users', { name: `${prefix} ${i + 1}` });
      await post(`/users/${userId}/balance/charge`, { amount: 10_000_000 });
      return userId as number;
    }),
    products: (n: number, prefix: string) => many(n, (i) => product(`${prefix} ${i + 1}`)),
  };
}

export type Fixture = Awaited<ReturnType<typeof seedThroughApi>>['fixture'];

/**
 * The run's data through the admin API: users and products (unless `drawn` from a seed at scale),
 * one HOT_STOCK product per hot run so that each sells out a product of its own, coupon-burst's
 * coupon (BURST_COUPONS copies), and mixed's coupon granted to `couponHolders` users.
 */
export async function seedThroughApi(
  target: Api, size: { users: number; products: number; couponHolders: number }, initialStock = new Map<number, number>(),
  drawn?: { userIds: number[]; productIds: number[] },
) {
  process.stderr.write('seeding through the admin API…\n');
  const api = await adminApi(target, initialStock);
  const userIds: readonly number[] = drawn?.userIds ?? (await api.users(size.users, 'bench user'));
  const productIds: readonly number[] = drawn?.productIds ?? (await api.products(size.products, 'bench product'));
  const hotProduct = (what: string) => api.product(`hot product${what}`, 9_900, HOT_STOCK);
  const hot = {
    service: await hotProduct(''), keyed: await hotProduct(' (keyed orders)'),
    serviceSql: await hotProduct(' (ceiling, service SQL)'), plainRowLock: await hotProduct(' (ceiling, plain row lock)'),
  };
  const coupon = async (name: string, discountType: string, discountValue: number, totalQuantity: number): Promise<number> =>
    (await api.post('/admin/coupons', { name, discountType, discountValue, totalQuantity })).couponId;
  const couponId = await coupon('flash 100', 'FIXED', 1_000, BURST_COUPONS);
  const mixedCouponId = await coupon('mixed 10%', 'RATE', 10, Math.max(1, size.couponHolders));
  const couponHolders: readonly number[] = userIds.slice(0, size.couponHolders);
  await api.many(couponHolders.length, (i) => api.post(`/admin/coupons/${mixedCouponId}/grant`, { userId: couponHolders[i] }));
  await api.close();
  return { fixture: { userIds, productIds, hot, couponId, couponHolders, mixedCouponId }, initialStock };
}

export type PgbenchRows = Awaited<ReturnType<typeof seedPgbenchRows>>;

/**
 * pgbench's users and products, as many as the service's and seeded as they are, plus its own hot
 * product, created after everything else so that each set's ids are consecutive (it draws them with
 * random(first, last)). Their stock joins `initialStock`, so the audit checks pgbench's orders too.
 */
export async function seedPgbenchRows(target: Api, size: { users: number; products: number }, initialStock: Map<number, number>) {
  const api = await adminApi(target, initialStock);
  const userIds = await api.users(size.users, 'pgbench user');
  const productIds = await api.products(size.products, 'pgbench product');
  const hotProductId = await api.product('hot product (pgbench)', 9_900, HOT_STOCK);
  await api.close();
  const range = (ids: number[], what: string) => {
    const [first, last] = [Math.min(...ids), Math.max(...ids)];
    if (last - first + 1 !== ids.length) throw new Error(`pgbench's ${what} ids are not consecutive (${first}..${last} for ${ids.length})`);
    return { first, last };
  };
  return { users: range(userIds, 'users'), products: range(productIds, 'products'), hotProductId };
}
