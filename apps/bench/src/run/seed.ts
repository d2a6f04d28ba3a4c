import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import type { Fixture } from './protocol.ts';
import { seededRandom } from './random.ts';

export interface SeedSize {
  readonly users: number;
  readonly products: number;
  readonly couponHolders: number;
}

export interface Seeded {
  readonly fixture: Fixture;
  /** Products the ceiling's hot-product runs use, one per variant, each with HOT_STOCK. */
  readonly ceilingHotProducts: { serviceSql: number; plainRowLock: number };
  /** Every product's stock at creation, for the stock invariant. */
  readonly initialStock: Map<number, number>;
}

export const HOT_STOCK = 5_000;
export const BURST_COUPONS = 100;
const BALANCE = 10_000_000;
const STOCK = 1_000_000;
/** Products cost 1,000 to 49,000 won, drawn from a seeded generator: pgbench's products are priced as the service's. */
const productPrice = (rand: () => number) => 1_000 + Math.floor(rand() * 49) * 1_000;

/** pgbench's own rows: users and products no other run touches, each set with consecutive ids. */
export interface PgbenchFixture {
  readonly users: { readonly first: number; readonly last: number };
  readonly products: { readonly first: number; readonly last: number };
  /** pgbench's hot product, with HOT_STOCK units. */
  readonly hotProductId: number;
}

/**
 * Seeds pgbench's users (as many as the service's, same balance, charged through the API so each
 * has its CHARGE ledger entry), its products (as many, same stock, same prices) and its hot
 * product, through the admin API, after everything else, so each set's ids are consecutive and
 * pgbench can draw them with random(first, last). Their initial stock joins `initialStock`, so the
 * audit checks pgbench's orders as it checks the service's.
 */
export async function seedPgbenchFixture(
  baseUrl: string,
  authSecret: string,
  size: { users: number; products: number },
  initialStock: Map<number, number>,
  onProgress: (done: number, total: number) => void,
): Promise<PgbenchFixture> {
  const { post, inParallel, user, close } = await adminApi(baseUrl, authSecret, size.users * 2 + size.products + 1, onProgress);
  const rand = seededRandom(7);
  const product = async (name: string, price: number, stock: number) => {
    const { productId } = await post('/admin/products', { name, price, stock });
    initialStock.set(productId, stock);
    return productId as number;
  };
  const userIds = await inParallel(size.users, (i) => user(`pgbench user ${i + 1}`));
  const productIds = await inParallel(size.products, (i) => product(`pgbench product ${i + 1}`, productPrice(rand), STOCK));
  const hotProductId = await product('hot product (pgbench)', 9_900, HOT_STOCK);
  await close();
  const range = (ids: number[], what: string) => {
    const first = Math.min(...ids);
    const last = Math.max(...ids);
    if (last - first + 1 !== ids.length) throw new Error(`pgbench's ${what} ids are not consecutive (${first}..${last} for ${ids.length}); was something else creating ${what}?`);
    return { first, last };
  };
  return { users: range(userIds, 'users'), products: range(productIds, 'products'), hotProductId };
}

/** The admin API, many requests at a time, counting each one done. */
async function adminApi(baseUrl: string, authSecret: string, total: number, onProgress: (done: number, total: number) => void) {
  const admin = `Bearer ${await signToken(new TextEncoder().encode(authSecret), { admin: true })}`;
  const pool = new Pool(baseUrl, { connections: 32 });
  const post = async (path: string, body: unknown): Promise<any> => {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { authorization: admin, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`seed ${path}: ${res.statusCode} ${text}`);
    return JSON.parse(text);
  };
  let done = 0;
  const tick = () => onProgress(++done, total);
  const inParallel = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
    const out = new Array<T>(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < n) {
          const i = next++;
          out[i] = await make(i);
          tick();
        }
      }),
    );
    return out;
  };
  /** A user holding BALANCE, charged as an operator would (one CHARGE ledger entry). */
  const user = async (name: string) => {
    const { userId } = await post('/admin/users', { name });
    await post(`/users/${userId}/balance/charge`, { amount: BALANCE });
    tick();
    return userId as number;
  };
  return { post, inParallel, user, tick, close: () => pool.close() };
}

/** Creates the run's data through the admin API, as an operator would, many requests at a time. */
export async function seedThroughApi(baseUrl: string, authSecret: string, size: SeedSize, onProgress: (done: number, total: number) => void): Promise<Seeded> {
  const total = size.users * 2 + size.products + 3 + size.couponHolders;
  const { post, inParallel, user, close } = await adminApi(baseUrl, authSecret, total, onProgress);
  const rand = seededRandom(7);
  const initialStock = new Map<number, number>();
  const product = async (name: string, price: number, stock: number) => {
    const { productId } = await post('/admin/products', { name, price, stock });
    initialStock.set(productId, stock);
    return productId as number;
  };
  const userIds = await inParallel(size.users, (i) => user(`bench user ${i + 1}`));
  const productIds = await inParallel(size.products, (i) => product(`bench product ${i + 1}`, productPrice(rand), STOCK));
  const hotProductId = await product('hot product', 9_900, HOT_STOCK);
  const hotKeyedProductId = await product('hot product (keyed orders)', 9_900, HOT_STOCK);
  const serviceSql = await product('hot product (ceiling, service SQL)', 9_900, HOT_STOCK);
  const plainRowLock = await product('hot product (ceiling, plain row lock)', 9_900, HOT_STOCK);
  const { couponId } = await post('/admin/coupons', { name: 'flash 100', discountType: 'FIXED', discountValue: 1_000, totalQuantity: BURST_COUPONS });
  const { couponId: mixedCouponId } = await post('/admin/coupons', {
    name: 'mixed 10%',
    discountType: 'RATE',
    discountValue: 10,
    totalQuantity: Math.max(1, size.couponHolders),
  });
  const couponHolders = userIds.slice(0, size.couponHolders);
  await inParallel(couponHolders.length, (i) => post(`/admin/coupons/${mixedCouponId}/grant`, { userId: couponHolders[i] }));
  await close();
  return {
    fixture: { userIds, productIds, hotProductId, hotKeyedProductId, couponId, couponHolders, mixedCouponId },
    ceilingHotProducts: { serviceSql, plainRowLock },
    initialStock,
  };
}
