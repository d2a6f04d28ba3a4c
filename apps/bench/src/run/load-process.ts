import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { serveOnePlan } from './child.ts';
import { closedLoop, type Attempt } from './closed-loop.ts';
import type { LoadPlan, LoadResult, Progress } from './protocol.ts';
import { pick, pickDistinct, seededRandom } from './random.ts';

/**
 * The load generator, in its own process so that its CPU is not the service's: HTTP/1.1
 * keep-alive through one undici pool of `connections` sockets, each kept busy in a closed loop.
 */
async function run(plan: LoadPlan): Promise<LoadResult> {
  const secret = new TextEncoder().encode(plan.authSecret);
  const tokens = new Map<number, string>();
  const { fixture } = plan;
  await Promise.all(fixture.userIds.map(async (id) => tokens.set(id, `Bearer ${await signToken(secret, { userId: id })}`)));
  const rand = seededRandom(plan.seed);
  const holders = [...fixture.couponHolders];
  const pool = new Pool(plan.baseUrl, { connections: plan.connections, pipelining: 1, keepAliveTimeout: 60_000 });

  const send = async (method: 'GET' | 'POST', path: string, userId: number | null, body?: unknown, isOrder = false): Promise<Attempt> => {
    const headers: Record<string, string> = {};
    if (userId !== null) headers.authorization = tokens.get(userId)!;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await pool.request({ method, path, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.body.text();
    let code = '';
    if (res.statusCode >= 400) {
      try {
        code = (JSON.parse(text) as { code?: string }).code ?? '';
      } catch {
        code = 'NOT_JSON';
      }
    }
    return { status: res.statusCode, code, isOrder };
  };

  const order = (userId: number, items: Array<{ productId: number; quantity: number }>, couponId?: number) =>
    send('POST', '/orders', userId, couponId === undefined ? { userId, items } : { userId, items, couponId }, true);

  const attempt = (index: number): Promise<Attempt> => {
    switch (plan.workload) {
      case 'uniform':
      case 'slow-platform': // uniform orders while the data platform answers slowly
        return order(
          pick(rand, fixture.userIds),
          pickDistinct(rand, fixture.productIds, 3).map((productId) => ({ productId, quantity: 1 })),
        );
      case 'hot-product':
        return order(pick(rand, fixture.userIds), [{ productId: fixture.hotProductId, quantity: 1 }]);
      case 'coupon-burst': {
        const userId = fixture.userIds[index % fixture.userIds.length]!;
        return send('POST', `/coupons/${fixture.couponId}/issue`, userId, { userId });
      }
      case 'mixed': {
        const r = rand();
        if (r < 0.7) {
          return rand() < 0.9
            ? send('GET', `/products/${pick(rand, fixture.productIds)}`, null)
            : send('GET', '/products?limit=20', null);
        }
        const userId = pick(rand, fixture.userIds);
        if (r < 0.8) return send('GET', `/users/${userId}/balance`, userId);
        if (r < 0.85) return send('POST', `/users/${userId}/balance/charge`, userId, { amount: 10_000 });
        const items = pickDistinct(rand, fixture.productIds, 3).map((productId) => ({ productId, quantity: 1 }));
        if (rand() < 0.2 && holders.length > 0) {
          const holder = holders.pop()!;
          return order(holder, items, fixture.mixedCouponId);
        }
        return order(userId, items);
      }
    }
  };

  const { samples, windowMs, failures } = await closedLoop(plan.shape, plan.connections, attempt, (done, total, phase) =>
    process.send!({ type: 'progress', done, total, phase } satisfies Progress),
  );
  await pool.close();
  return { samples, windowMs, transportErrors: failures };
}

serveOnePlan<LoadPlan>('load process', run);
