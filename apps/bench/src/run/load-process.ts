import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { serveOnePlan } from './children.ts';
import { closedLoop, type Attempt } from './closed-loop.ts';
import type { LoadPlan, LoadResult, RefundLoad } from './protocol.ts';
import { pick, quantile, round, seededRandom, uniformItems } from './stats.ts';

type Items = Array<{ productId: number; quantity: number }>;

/**
 * The HTTP load, in its own process so that its CPU is not the service's: HTTP/1.1 keep-alive
 * through one undici pool of `connections` sockets, each busy in a closed loop.
 */
async function run(plan: LoadPlan): Promise<LoadResult> {
  const { fixture } = plan;
  const secret = new TextEncoder().encode(plan.authSecret);
  const tokens = new Map<number, string>();
  await Promise.all(fixture.userIds.map(async (id) => tokens.set(id, `Bearer ${await signToken(secret, { userId: id })}`)));
  const rand = seededRandom(plan.seed);
  const pool = new Pool(plan.baseUrl, { connections: plan.connections, pipelining: 1, keepAliveTimeout: 60_000 });

  const exchange = async (method: 'GET' | 'POST', path: string, userId: number | null, body?: string, key?: string) => {
    const headers: Record<string, string> = {};
    if (userId !== null) headers.authorization = tokens.get(userId)!;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers['idempotency-key'] = key;
    const res = await pool.request({ method, path, headers, body });
    const text = await res.body.text();
    let code = '';
    if (res.statusCode >= 400) {
      try {
        code = (JSON.parse(text) as { code?: string }).code ?? '';
      } catch {
        code = 'NOT_JSON';
      }
    }
    return { status: res.statusCode, code, text, replayed: res.headers['idempotent-replayed'] };
  };
  const send = async (method: 'GET' | 'POST', path: string, userId: number | null, body?: unknown, kind: Attempt['kind'] = 0) => {
    const { status, code } = await exchange(method, path, userId, body === undefined ? undefined : JSON.stringify(body));
    return { status, code, kind };
  };

  // Keyed: every order its own Idempotency-Key; about replayShare of those answered 201 are sent
  // again a moment later over the same connections. Replays are not samples, and draw from their
  // own random stream, so the orders themselves are the unkeyed twin's, request for request.
  const replayRand = seededRandom(plan.seed ^ 0x2545f491);
  const inFlight = new Set<Promise<void>>();
  const replayMs: number[] = [];
  const replays = { sent: 0, matched: 0, byteIdentical: 0, mismatched: 0, firstAnswersMarkedReplayed: 0 };
  const mismatchKinds: Record<string, number> = {};
  const examples: string[] = [];
  const mismatch = (kind: string, detail: string) => {
    replays.mismatched++;
    mismatchKinds[kind] = (mismatchKinds[kind] ?? 0) + 1;
    if (examples.length < 5) examples.push(`${kind}: ${detail}`.slice(0, 600));
  };
  const replay = async (userId: number, body: string, key: string, first: string) => {
    await new Promise((r) => setTimeout(r, 5 + replayRand() * 95)); // 5 to 100 ms after the first answer
    replays.sent++;
    const t0 = performance.now();
    const again = await exchange('POST', '/orders', userId, body, key).catch((err: { code?: string }) => err);
    replayMs.push(performance.now() - t0);
    if (!('status' in again)) return mismatch(`transport ${again.code ?? 'error'}`, `key ${key}`);
    if (again.status !== 201) return mismatch(`status ${again.status} ${again.code}`.trim(), `key ${key}: ${again.text}`);
    if (again.replayed !== 'true') return mismatch('no idempotent-replayed: true', `key ${key}: header ${JSON.stringify(again.replayed)}`);
    let same = false;
    try {
      same = isDeepStrictEqual(JSON.parse(again.text), JSON.parse(first));
    } catch {
      same = false;
    }
    if (!same) return mismatch('body differs', `key ${key}: first ${first} / replay ${again.text}`);
    replays.matched++;
    if (again.text === first) replays.byteIdentical++;
  };

  // refund: every second order answered 201 is cancelled by its owner as the next request a
  // connection sends, so cancellations race new orders on the same rows; tracked over the whole
  // run, window or not, for the orchestrator to check against the database.
  const cancelQueue: Array<{ orderId: string; userId: number }> = [];
  const refund = {
    placed: [] as string[], cancelsSent: 0, cancelsAfterLoop: 0, cancelled: [] as string[],
    refused: [] as Array<[string, string]>, outcomes: {} as Record<string, number>, badBodies: 0, examples: [] as string[],
  } satisfies RefundLoad;
  const cancel = async ({ orderId, userId }: { orderId: string; userId: number }): Promise<Attempt> => {
    refund.cancelsSent++;
    const tally = (outcome: string) => {
      refund.outcomes[outcome] = (refund.outcomes[outcome] ?? 0) + 1;
      if (outcome !== '200') refund.refused.push([orderId, outcome]);
    };
    const r = await exchange('POST', `/orders/${encodeURIComponent(orderId)}/cancel`, userId).catch((err: { code?: string }) => {
      tally(`0 ${err.code ?? 'TRANSPORT'}`);
      throw err;
    });
    tally(r.status === 200 ? '200' : `${r.status} ${r.code}`.trim());
    if (r.status === 200) {
      refund.cancelled.push(orderId);
      let o: Record<string, unknown> = {};
      try {
        o = JSON.parse(r.text) as typeof o;
      } catch {
        // a bad body, counted below
      }
      if (o.orderId !== orderId || o.userId !== userId || o.status !== 'CANCELLED' || typeof o.cancelledAt !== 'string') {
        refund.badBodies++;
        if (refund.examples.length < 5) refund.examples.push(`order ${orderId}: ${r.text}`.slice(0, 600));
      }
    }
    return { status: r.status, code: r.code, kind: 2 };
  };

  const order = async (userId: number, items: Items, couponId?: number): Promise<Attempt> => {
    const body = JSON.stringify(couponId === undefined ? { userId, items } : { userId, items, couponId });
    const key = plan.keyed ? randomUUID() : undefined;
    const first = await exchange('POST', '/orders', userId, body, key);
    if (first.status === 201 && key) {
      if (first.replayed !== undefined) replays.firstAnswersMarkedReplayed++;
      if (replayRand() < plan.replayShare) {
        const p = replay(userId, body, key, first.text).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    }
    if (first.status === 201 && plan.requests === 'refund') {
      refund.placed.push((JSON.parse(first.text) as { orderId: string }).orderId);
      if (refund.placed.length % 2 === 0) cancelQueue.push({ orderId: refund.placed.at(-1)!, userId });
    }
    return { status: first.status, code: first.code, kind: 1 };
  };

  const holders = [...fixture.couponHolders];
  const requests: Record<LoadPlan['requests'], (index: number) => Promise<Attempt>> = {
    uniform: () => order(pick(rand, fixture.userIds), uniformItems(rand, fixture.productIds)),
    hot: () => order(pick(rand, fixture.userIds), [{ productId: plan.productId, quantity: 1 }]),
    'coupon-burst': (index) => {
      const userId = fixture.userIds[index % fixture.userIds.length]!;
      return send('POST', `/coupons/${fixture.couponId}/issue`, userId, { userId });
    },
    // A free connection takes a queued cancellation before a new order.
    refund: () => {
      const queued = cancelQueue.shift();
      return queued ? cancel(queued) : order(pick(rand, fixture.userIds), uniformItems(rand, fixture.productIds));
    },
    // 70 % product reads, 10 % balance reads, 5 % charges, 15 % orders (a fifth with a coupon).
    mixed: () => {
      const r = rand();
      if (r < 0.7) return rand() < 0.9 ? send('GET', `/products/${pick(rand, fixture.productIds)}`, null) : send('GET', '/products?limit=20', null);
      const userId = pick(rand, fixture.userIds);
      if (r < 0.8) return send('GET', `/users/${userId}/balance`, userId);
      if (r < 0.85) return send('POST', `/users/${userId}/balance/charge`, userId, { amount: 10_000 });
      const items = uniformItems(rand, fixture.productIds);
      return rand() < 0.2 && holders.length > 0 ? order(holders.pop()!, items, fixture.mixedCouponId) : order(userId, items);
    },
  };

  const result = await closedLoop(plan.shape, plan.connections, requests[plan.requests]);
  // The load is over; the replays it scheduled still count, and so do the cancellations still
  // queued (orders answered as the loop ended): every second order is cancelled, window or not.
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  await Promise.all(
    Array.from({ length: Math.min(plan.connections, cancelQueue.length) }, async () => {
      for (let queued = cancelQueue.shift(); queued; queued = cancelQueue.shift()) {
        refund.cancelsAfterLoop++;
        await cancel(queued).catch(() => undefined); // tallied as a transport error
      }
    }),
  );
  await pool.close();
  if (plan.requests === 'refund') return { ...result, refund };
  if (!plan.keyed) return result;
  const sorted = replayMs.sort((a, b) => a - b);
  const latencyMs = { p50: round(quantile(sorted, 0.5)), p99: round(quantile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) };
  return { ...result, replays: { ...replays, mismatchKinds, examples, latencyMs } };
}

serveOnePlan('load process', run);
