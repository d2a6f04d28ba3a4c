import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { progressBar } from './children.ts';
import type { Fixture } from './protocol.ts';
import { seededRandom } from './stats.ts';

export const HOT_STOCK = 5_000;
export const BURST_COUPONS = 100;
const BALANCE = 10_000_000;
const STOCK = 1_000_000;

export interface Seeded {
  readonly fixture: Fixture;
  /** Every product's stock at creation, for the audit's stock invariant. */
  readonly initialStock: Map<number, number>;
}

/**
 * The admin API, 32 requests at a time, as an operator would create the data. Users are charged
 * through the API, so each has its CHARGE ledger entry; products are priced 1,000 to 49,000 won
 * from a seeded generator, the same for the service's products and pgbench's.
 */
async function adminApi(baseUrl: string, authSecret: string, label: string, total: number, initialStock: Map<number, number>) {
  const admin = `Bearer ${await signToken(new TextEncoder().encode(authSecret), { admin: true })}`;
  const pool = new Pool(baseUrl, { connections: 32 });
  const bar = progressBar(label);
  let done = 0;
  const tick = () => bar(++done, total, done >= total ? 'done' : 'seeding');
  const post = async (path: string, body: unknown): Promise<any> => {
    const res = await pool.request({ method: 'POST', path, headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`seed ${path}: ${res.statusCode} ${text}`);
    tick();
    return JSON.parse(text);
  };
  const many = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
    const out = new Array<T>(n);
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        out[i] = await make(i);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    return out;
  };
  const rand = seededRandom(7);
  return {
    post,
    many,
    users: (n: number, prefix: string) =>
      many(n, async (i) => {
        const { userId } = await post('/admin/users', { name: `${prefix} ${i + 1}` });
        await post(`/users/${userId}/balance/charge`, { amount: BALANCE });
        return userId as number;
      }),
    product: async (name: string, price = 1_000 + Math.floor(rand() * 49) * 1_000, stock = STOCK) => {
      const { productId } = await post('/admin/products', { name, price, stock });
      initialStock.set(productId, stock);
      return productId as number;
    },
    close: () => pool.close(),
  };
}

/**
 * The run's data through the admin API: users and products (unless `drawn` from a seed at
 * scale), one HOT_STOCK product per hot run, coupon-burst's coupon, and mixed's coupon granted
 * to `couponHolders` users.
 */
export async function seedThroughApi(
  target: { baseUrl: string; authSecret: string },
  size: { users: number; products: number; couponHolders: number },
  initialStock = new Map<number, number>(),
  drawn?: { userIds: number[]; productIds: number[] },
): Promise<Seeded> {
  const total = (drawn ? 0 : size.users * 2 + size.products) + 6 + size.couponHolders;
  const api = await adminApi(target.baseUrl, target.authSecret, 'seeding through the admin API', total, initialStock);
  const userIds = drawn?.userIds ?? (await api.users(size.users, 'bench user'));
  const productIds = drawn?.productIds ?? (await api.many(size.products, (i) => api.product(`bench product ${i + 1}`)));
  const hotProduct = (what: string) => api.product(`hot product${what}`, 9_900, HOT_STOCK);
  const hot = {
    service: await hotProduct(''),
    keyed: await hotProduct(' (keyed orders)'),
    serviceSql: await hotProduct(' (ceiling, service SQL)'),
    plainRowLock: await hotProduct(' (ceiling, plain row lock)'),
  };
  const coupon = (name: string, discountType: string, discountValue: number, totalQuantity: number) =>
    api.post('/admin/coupons', { name, discountType, discountValue, totalQuantity }).then((c: { couponId: number }) => c.couponId);
  const couponId = await coupon('flash 100', 'FIXED', 1_000, BURST_COUPONS);
  const mixedCouponId = await coupon('mixed 10%', 'RATE', 10, Math.max(1, size.couponHolders));
  const couponHolders = userIds.slice(0, size.couponHolders);
  await api.many(couponHolders.length, (i) => api.post(`/admin/coupons/${mixedCouponId}/grant`, { userId: couponHolders[i] }));
  await api.close();
  return { fixture: { userIds, productIds, hot, couponId, couponHolders, mixedCouponId }, initialStock };
}

/** pgbench's own rows: ids it draws with random(first, last), so each set must be consecutive. */
export interface PgbenchRows {
  readonly users: { readonly first: number; readonly last: number };
  readonly products: { readonly first: number; readonly last: number };
  readonly hotProductId: number;
}

/**
 * pgbench's users and products, as many as the service's and seeded as they are, plus its own
 * hot product, created after everything else so each set's ids are consecutive. Their stock joins
 * `initialStock`, so the audit checks pgbench's orders as it checks the service's.
 */
export async function seedPgbenchRows(
  target: { baseUrl: string; authSecret: string },
  size: { users: number; products: number },
  initialStock: Map<number, number>,
): Promise<PgbenchRows> {
  const api = await adminApi(target.baseUrl, target.authSecret, "seeding pgbench's own rows", size.users * 2 + size.products + 1, initialStock);
  const userIds = await api.users(size.users, 'pgbench user');
  const productIds = await api.many(size.products, (i) => api.product(`pgbench product ${i + 1}`));
  const hotProductId = await api.product('hot product (pgbench)', 9_900, HOT_STOCK);
  await api.close();
  const range = (ids: number[], what: string) => {
    const [first, last] = [Math.min(...ids), Math.max(...ids)];
    if (last - first + 1 !== ids.length) throw new Error(`pgbench's ${what} ids are not consecutive (${first}..${last} for ${ids.length})`);
    return { first, last };
  };
  return { users: range(userIds, 'users'), products: range(productIds, 'products'), hotProductId };
}
