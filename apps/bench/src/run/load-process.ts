import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { serveOnePlan } from './child.ts';
import { closedLoop, type Attempt } from './closed-loop.ts';
import { isKeyed, sendEdge, type LoadPlan, type LoadResult, type Progress, type RefundLoad, type ReplayStats } from './protocol.ts';
import { pick, pickDistinct, seededRandom } from './random.ts';
import { quantile } from './stats.ts';

/** A replay goes out this long after the first answer: 5 to 100 ms. */
const REPLAY_DELAY_MS = { min: 5, max: 100 };

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

  const exchange = async (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined) => {
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
  const headersFor = (userId: number | null, body: unknown) => {
    const headers: Record<string, string> = {};
    if (userId !== null) headers.authorization = tokens.get(userId)!;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return headers;
  };

  const send = async (method: 'GET' | 'POST', path: string, userId: number | null, body?: unknown, isOrder = false): Promise<Attempt> => {
    const { status, code } = await exchange(method, path, headersFor(userId, body), body === undefined ? undefined : JSON.stringify(body));
    return { status, code, isOrder };
  };

  // Keyed workloads: every order its own Idempotency-Key; about plan.replayShare of those answered
  // 201 are sent again a moment later, over the same connections, concurrently with the load.
  // Replays are not samples: they are neither attempts nor new orders. They draw from their own
  // random stream, so the orders themselves are the unkeyed twin's, request for request.
  const keyed = isKeyed(plan.workload);
  const replayRand = seededRandom(plan.seed ^ 0x2545f491);
  const inFlightReplays = new Set<Promise<void>>();
  const replayLatencies: number[] = [];
  const replays = { sent: 0, matched: 0, byteIdentical: 0, mismatched: 0, firstAnswersMarkedReplayed: 0 };
  const mismatchKinds: Record<string, number> = {};
  const examples: string[] = [];
  const mismatch = (kind: string, detail: string) => {
    replays.mismatched++;
    mismatchKinds[kind] = (mismatchKinds[kind] ?? 0) + 1;
    if (examples.length < 5) examples.push(`${kind}: ${detail}`.slice(0, 600));
  };

  const replay = async (headers: Record<string, string>, body: string, first: string) => {
    await new Promise((r) => setTimeout(r, REPLAY_DELAY_MS.min + replayRand() * (REPLAY_DELAY_MS.max - REPLAY_DELAY_MS.min)));
    replays.sent++;
    const key = headers['idempotency-key'];
    const t0 = performance.now();
    let again: Awaited<ReturnType<typeof exchange>>;
    try {
      again = await exchange('POST', '/orders', headers, body);
    } catch (err) {
      replayLatencies.push(performance.now() - t0);
      mismatch(`transport ${(err as { code?: string }).code ?? 'error'}`, `key ${key}`);
      return;
    }
    replayLatencies.push(performance.now() - t0);
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

  const order = async (userId: number, items: Array<{ productId: number; quantity: number }>, couponId?: number): Promise<Attempt> => {
    const body = couponId === undefined ? { userId, items } : { userId, items, couponId };
    if (!keyed) return send('POST', '/orders', userId, body, true);
    const headers = { ...headersFor(userId, body), 'idempotency-key': randomUUID() };
    const text = JSON.stringify(body);
    const first = await exchange('POST', '/orders', headers, text);
    if (first.status === 201) {
      if (first.replayed !== undefined) replays.firstAnswersMarkedReplayed++;
      if (replayRand() < plan.replayShare) {
        const p = replay(headers, text, first.text).finally(() => inFlightReplays.delete(p));
        inFlightReplays.add(p);
      }
    }
    return { status: first.status, code: first.code, isOrder: true };
  };

  // refund: every second order answered 201 is cancelled by its owner, as the next request a
  // connection sends (a worker that frees up takes a queued cancellation before a new order), so
  // cancellations race the new orders on the same product and user rows. The whole run is
  // tracked, not only the window: the orchestrator checks each answer against the database.
  const cancelQueue: Array<{ orderId: string; userId: number }> = [];
  const refund = {
    placed: [] as string[],
    cancelsSent: 0,
    cancelsAfterLoop: 0,
    cancelled: [] as string[],
    refused: [] as Array<[string, string]>,
    outcomes: {} as Record<string, number>,
    badBodies: 0,
    examples: [] as string[],
  } satisfies RefundLoad;
  const refundOrder = async (userId: number, items: Array<{ productId: number; quantity: number }>): Promise<Attempt> => {
    const body = { userId, items };
    const r = await exchange('POST', '/orders', headersFor(userId, body), JSON.stringify(body));
    if (r.status === 201) {
      const orderId = (JSON.parse(r.text) as { orderId: string }).orderId;
      refund.placed.push(orderId);
      if (refund.placed.length % 2 === 0) cancelQueue.push({ orderId, userId });
    }
    return { status: r.status, code: r.code, isOrder: true };
  };
  const cancel = async ({ orderId, userId }: { orderId: string; userId: number }): Promise<Attempt> => {
    refund.cancelsSent++;
    const tally = (outcome: string) => {
      refund.outcomes[outcome] = (refund.outcomes[outcome] ?? 0) + 1;
      if (outcome !== '200') refund.refused.push([orderId, outcome]);
    };
    let r: Awaited<ReturnType<typeof exchange>>;
    try {
      r = await exchange('POST', `/orders/${encodeURIComponent(orderId)}/cancel`, headersFor(userId, undefined), undefined);
    } catch (err) {
      tally(`0 ${(err as { code?: string }).code ?? 'TRANSPORT'}`);
      throw err;
    }
    tally(r.status === 200 ? '200' : `${r.status} ${r.code}`.trim());
    if (r.status === 200) {
      refund.cancelled.push(orderId);
      let o: { orderId?: unknown; userId?: unknown; status?: unknown; cancelledAt?: unknown } = {};
      try {
        o = JSON.parse(r.text) as typeof o;
      } catch {
        // counted below
      }
      if (o.orderId !== orderId || o.userId !== userId || o.status !== 'CANCELLED' || typeof o.cancelledAt !== 'string') {
        refund.badBodies++;
        if (refund.examples.length < 5) refund.examples.push(`order ${orderId}: ${r.text}`.slice(0, 600));
      }
    }
    return { status: r.status, code: r.code, isOrder: false, isCancel: true };
  };

  const attempt = (index: number): Promise<Attempt> => {
    switch (plan.workload) {
      case 'uniform':
      case 'uniform-keyed':
      case 'slow-platform': // uniform orders while the data platform answers slowly
        return order(
          pick(rand, fixture.userIds),
          pickDistinct(rand, fixture.productIds, 3).map((productId) => ({ productId, quantity: 1 })),
        );
      case 'hot-product':
      case 'hot-product-keyed': {
        const productId = plan.workload === 'hot-product' ? fixture.hotProductId : fixture.hotKeyedProductId;
        return order(pick(rand, fixture.userIds), [{ productId, quantity: 1 }]);
      }
      case 'coupon-burst': {
        const userId = fixture.userIds[index % fixture.userIds.length]!;
        return send('POST', `/coupons/${fixture.couponId}/issue`, userId, { userId });
      }
      case 'refund': {
        const queued = cancelQueue.shift();
        if (queued) return cancel(queued);
        return refundOrder(
          pick(rand, fixture.userIds),
          pickDistinct(rand, fixture.productIds, 3).map((productId) => ({ productId, quantity: 1 })),
        );
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

  const { samples, windowMs, failures } = await closedLoop(
    plan.shape,
    plan.connections,
    attempt,
    (done, total, phase) => process.send!({ type: 'progress', done, total, phase } satisfies Progress),
    sendEdge,
  );
  // The load is over; the replays it scheduled still count.
  while (inFlightReplays.size > 0) await Promise.all([...inFlightReplays]);
  // And so do the cancellations still queued (orders answered as the loop ended): every second
  // order is cancelled, window or not.
  await Promise.all(
    Array.from({ length: Math.min(plan.connections, cancelQueue.length) }, async () => {
      for (let queued = cancelQueue.shift(); queued; queued = cancelQueue.shift()) {
        refund.cancelsAfterLoop++;
        await cancel(queued).catch(() => undefined); // tallied as a transport error
      }
    }),
  );
  await pool.close();
  if (plan.workload === 'refund') return { samples, windowMs, transportErrors: failures, refund };
  if (!keyed) return { samples, windowMs, transportErrors: failures };
  const sorted = replayLatencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  const stats: ReplayStats = {
    ...replays,
    mismatchKinds,
    examples,
    latencyMs: { p50: round(quantile(sorted, 0.5)), p99: round(quantile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) },
  };
  return { samples, windowMs, transportErrors: failures, replays: stats };
}

serveOnePlan<LoadPlan>('load process', run);
