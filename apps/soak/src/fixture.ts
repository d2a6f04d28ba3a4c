import { signToken } from '@shop/adapters-http';
import type { Fixture } from './load.ts';

export const USERS = 300;
export const PRODUCTS = 40;
/** Stock no run can sell out: an order is never refused for stock, so every refusal means something. */
export const STOCK = 1_000_000;
/** A balance no run can spend (orders average about 10,000 won; charges add to it). */
export const BALANCE = 10_000_000;
/** Copies of the coupon: half the users, so that late issues are told COUPON_EXHAUSTED. */
export const COUPON_COPIES = USERS / 2;

/**
 * The run's data through the admin API, as an operator would create it: users (each charged once),
 * products priced 100 to 4,000 won, and a 10 % coupon. Returns the fixture and every product's
 * initial stock, for the audit.
 */
export async function seed(baseUrl: string, authSecret: string): Promise<{ fixture: Fixture; initialStock: Map<number, number> }> {
  const secret = new TextEncoder().encode(authSecret);
  const admin = `Bearer ${await signToken(secret, { admin: true })}`;
  const post = async (path: string, body: unknown): Promise<any> => {
    const res = await fetch(baseUrl + path, { method: 'POST', headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`seeding ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  const many = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
    const out = new Array<T>(n);
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let i = next++; i < n; i = next++) out[i] = await make(i);
    }));
    return out;
  };
  const userIds = await many(USERS, async (i) => {
    const { userId } = await post('/admin/users', { name: `soak user ${i + 1}` });
    await post(`/users/${userId}/balance/charge`, { amount: BALANCE });
    return userId as number;
  });
  const initialStock = new Map<number, number>();
  const productIds = await many(PRODUCTS, async (i) => {
    const { productId } = await post('/admin/products', { name: `soak product ${i + 1}`, price: 100 * (1 + i), stock: STOCK });
    initialStock.set(productId, STOCK);
    return productId as number;
  });
  const { couponId } = await post('/admin/coupons', { name: 'soak 10%', discountType: 'RATE', discountValue: 10, totalQuantity: COUPON_COPIES });
  const tokens = new Map(await Promise.all(userIds.map(async (id) => [id, `Bearer ${await signToken(secret, { userId: id })}`] as const)));
  return { fixture: { userIds, productIds, couponId, tokens }, initialStock };
}
