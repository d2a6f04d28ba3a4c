import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { openDatabase, pgOrderBook, pgReadStore, PgUnitOfWork, ping } from '@shop/adapters-postgres';
import { plainRowLockOrder } from '@shop/adapters-postgres/bench';
import { placeOrder, systemClock, uuidV7 } from '@shop/application';
import { isDomainError } from '@shop/domain';
import { CANCEL, ORDER, percentiles, REFUND, pick, seededRandom, sleep, tryOr, uniformItems, type Sample, type Shape } from './stats.ts';
import type { Fixture } from './target.ts';

// The load generators, each in a process of its own so that its CPU is not the service's: the HTTP load (`load`), or the order code from one Node
// process (`ceiling`). The orchestrator forks this file with one plan, hears the window's edges (it samples CPU there) and gets the samples back.

type Common = { readonly connections: number; readonly shape: Shape; readonly seed: number };
export type Requests = 'floor' | 'product-read' | 'uniform' | 'hot' | 'coupon-burst' | 'mixed' | 'refund' | 'order-cancel';
export type LoadPlan = Common & {
  readonly kind: 'load'; readonly requests: Requests; readonly baseUrl: string; readonly authSecret: string; readonly fixture: Fixture;
  /** keyed: an Idempotency-Key each, replayShare of the 201s sent again; productId: hot's product; refundOrders: refund's (its shape counts none). */
  readonly keyed: boolean; readonly replayShare: number; readonly productId: number; readonly refundOrders: number;
  /** keyed and > 0: interleaved, only every other phase of this many ms keyed (the first of the window not), each edge a CPU sample. */
  readonly phaseMs: number;
};
/** ceiling: the service's order use case over the Postgres adapter; plain-row-lock: the adapter's textbook transaction. */
export type CeilingPlan = Common & {
  readonly kind: 'ceiling'; readonly variant: 'ceiling' | 'plain-row-lock'; readonly databaseUrl: string;
  /** Each order: 1–3 of these products, 1 unit each; or with one product, that one. As the service's: its pool and order writes. */
  readonly productIds: readonly number[]; readonly userIds: readonly number[]; readonly poolSize: number; readonly orderWrites: number;
};
type Loaded = Awaited<ReturnType<typeof load>>;
export type ReplayStats = NonNullable<Loaded['replays']>;
export type LoadResult = Awaited<ReturnType<typeof closedLoop>> & { readonly replays?: ReplayStats; readonly refund?: Loaded['refund'];
  readonly interleaved?: Loaded['interleaved'] };
export type Edge = 'start' | 'phase' | 'end';
type Message = { type: 'edge'; edge: Edge } | { type: 'result'; result: LoadResult };
type Attempt = { status: number; code: string; kind: Sample[4] };
type Items = Array<{ productId: number; quantity: number }>;

/** Runs a plan in a child process; `onEdge` hears its measured window open, its phases change (interleaved) and the window close. */
export function runInChild(plan: LoadPlan | CeilingPlan, onEdge: (pid: number, edge: Edge) => void): Promise<LoadResult> {
  const child = fork(fileURLToPath(import.meta.url), {
    execArgv: ['--disable-warning=ExperimentalWarning'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced',
  });
  return new Promise((resolve, reject) => {
    let result: LoadResult | null = null;
    child.on('message', (m: Message) => (m.type === 'edge' ? onEdge(child.pid!, m.edge) : (result = m.result)));
    child.once('exit', (code) => (result ? resolve(result) : reject(new Error(`the ${plan.kind} process exited with ${code}`))));
    child.send(plan);
  });
}

// `connections` workers each send the next request once the previous one is answered, as keep-alive clients do. A timed shape measures the window
// after the warm-up; a counted one every attempt, until `attempt` has nothing more to send (null; 'wait': nothing yet). With `phase` (timed only),
// phase.keyed flips every phase.ms from the start, and from the window's opening, not keyed then, each flip is an edge: `bounds` are their instants.
async function closedLoop(shape: Shape, connections: number, attempt: (index: number) => Promise<Attempt> | 'wait' | null, phase?: { ms: number; keyed: boolean }) {
  const samples: Sample[] = [];
  let [failures, started] = [0, 0];
  const t0 = performance.now();
  const [warmup, length] = shape.kind === 'timed' ? [shape.warmupMs, shape.durationMs] : [0, Number.POSITIVE_INFINITY];
  const [start, end] = [t0 + warmup, t0 + warmup + length];
  const more = () => (shape.kind === 'timed' ? performance.now() < end : started < shape.attempts);
  const [marked, bounds] = [new Set<Edge>(), [] as number[]];
  const flip = (e: Edge) => (bounds.push(performance.now()), process.send!({ type: 'edge', edge: e } satisfies Message));
  let flips = phase && shape.kind === 'timed' ? setInterval(() => (phase.keyed = !phase.keyed), phase.ms) : undefined;
  const edge = (e: 'start' | 'end') => {
    if (marked.has(e)) return;
    marked.add(e);
    clearInterval(flips);
    if (!phase || !flips) return void process.send!({ type: 'edge', edge: e } satisfies Message);
    flip(e);
    phase.keyed = false;
    if (e === 'start') flips = setInterval(() => ((phase.keyed = !phase.keyed), flip('phase')), phase.ms);
  };
  const edges = shape.kind === 'timed' ? [setTimeout(() => edge('start'), warmup), setTimeout(() => edge('end'), warmup + length)] : [];
  if (shape.kind === 'count') edge('start');
  const worker = async () => {
    while (more()) {
      const [a, sent] = [performance.now(), attempt(started)];
      if (sent === null) return;
      if (sent === 'wait') {
        await sleep(2);
        continue;
      }
      started++;
      const outcome = await sent.catch((err: { code?: string }): Attempt => ({ status: 0, code: err.code ?? 'TRANSPORT', kind: 0 }));
      const b = performance.now();
      failures += outcome.status === 0 ? 1 : 0;
      if (a >= start && b <= end) samples.push([a - start, b - a, outcome.status, outcome.code, outcome.kind]);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  // On a busy machine the last answers can come before the late timer of the window's end: its edge still closes the window.
  edges.forEach(clearTimeout);
  edge('end');
  return { samples, windowMs: shape.kind === 'timed' ? shape.durationMs : performance.now() - t0, transportErrors: failures, window: [start, end] as const, bounds };
}

const parse = (text: string): any => tryOr(() => JSON.parse(text));

/** The HTTP load: HTTP/1.1 keep-alive through one undici pool of `connections` sockets. */
async function load(plan: LoadPlan) {
  const [f, secret, rand] = [plan.fixture, new TextEncoder().encode(plan.authSecret), seededRandom(plan.seed)];
  const tokens = new Map(await Promise.all(f.userIds.map(async (id) => [id, `Bearer ${await signToken(secret, { userId: id })}`] as const)));
  const pool = new Pool(plan.baseUrl, { connections: plan.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  /** One request (its body a string as given, or JSON): its answer, status 0 if dropped. */
  const exchange = async (method: 'GET' | 'POST', path: string, userId: number | null, body?: unknown, key?: string) => {
    const json = typeof body === 'string' || body === undefined ? body : JSON.stringify(body);
    const headers: Record<string, string> = { ...(userId !== null && { authorization: tokens.get(userId)! }),
      ...(json !== undefined && { 'content-type': 'application/json' }), ...(key && { 'idempotency-key': key }) };
    try {
      const res = await pool.request({ method, path, headers, body: json });
      const text = await res.body.text();
      const code = res.statusCode < 400 ? '' : parse(text) === undefined ? 'NOT_JSON' : (parse(text)?.code ?? '');
      return { status: res.statusCode, code, text, replayed: res.headers['idempotent-replayed'], kind: 0 as const };
    } catch (err) {
      return { status: 0, code: (err as { code?: string }).code ?? 'TRANSPORT', text: '', replayed: undefined, kind: 0 as const };
    }
  };

  // Keyed: about replayShare of the orders answered 201 are sent again 5–100 ms later, same key and body. Replays are not samples and draw from their
  // own random stream, so the orders themselves are the unkeyed twin's, request for request.
  const [replayRand, inFlight, replayMs, replaySpans] = [seededRandom(plan.seed ^ 0x2545f491), new Set<Promise<void>>(), [] as number[], [] as [number, number][]];
  // firstAnswersMarkedReplayed: first answers (a fresh key) marked `idempotent-replayed`, a key collision or a bug.
  const replays = { sent: 0, matched: 0, byteIdentical: 0, mismatched: 0, mismatchKinds: {} as Record<string, number>, examples: [] as string[],
    firstAnswersMarkedReplayed: 0 };
  const replay = async (userId: number, body: string, key: string, first: string) => {
    await sleep(5 + replayRand() * 95);
    const [t0, again] = [performance.now(), await exchange('POST', '/orders', userId, body, key)];
    replayMs.push(performance.now() - t0);
    replaySpans.push([t0, performance.now()]);
    replays.sent++;
    const why = again.status !== 201 ? `status ${again.status} ${again.code}`.trim() : again.replayed !== 'true' ? 'no idempotent-replayed: true'
      : !isDeepStrictEqual(parse(again.text) ?? NaN, parse(first)) ? 'body differs' : null;
    replays.matched += why ? 0 : 1;
    replays.byteIdentical += !why && again.text === first ? 1 : 0;
    if (!why) return;
    replays.mismatched++;
    replays.mismatchKinds[why] = (replays.mismatchKinds[why] ?? 0) + 1;
    if (replays.examples.length < 5) replays.examples.push(`${why}: key ${key}, replay ${JSON.stringify(again.replayed)} ${again.text} / first ${first}`);
  };

  // refund: a quarter of its orders its coupon holders' (with their copy unless an open order holds it); each 201 then refunded in 1–2 parts of random
  // units and cancelled, a step at a time, each a free connection's next request (429: again 50 ms later). The last cancel ends the loop.
  type Chain = { orderId: string; userId: number; coupon: boolean; steps: Array<Items | null> };
  const [stepRand, queue, free] = [seededRandom(plan.seed ^ 0x5bd1e995), [] as Chain[], new Set(f.couponHolders)];
  let [ordered, open] = [0, 0];
  // problems: steps refused but by the rate limit, answered 5xx or dropped (each ends its order's chain), and 2xx bodies not as asked.
  const refund = { placed: [] as string[], couponOrders: 0, refundIds: {} as Record<string, string[]>, requeued: 0, problems: [] as string[] };
  const end = (c: { userId: number; coupon: boolean }) => void (open--, c.coupon && free.add(c.userId));
  /** The refunds of an order of these units, 1 or 2 of random units leaving at least one, then the cancel (null). */
  const partSteps = (units: number[], steps: Array<Items | null> = []) => {
    const k = Math.min(units.length - 1, 1 + Math.floor(stepRand() * 2));
    for (let j = 0; j < k; j++) {
      const n = 1 + Math.floor(stepRand() * (units.length - (k - j)));
      const taken = Array.from({ length: n }, () => units.splice(Math.floor(stepRand() * units.length), 1)[0]!);
      steps.push([...new Set(taken)].sort((a, b) => a - b).map((productId) => ({ productId, quantity: taken.filter((p) => p === productId).length })));
    }
    return [...steps, null];
  };
  const placeToRefund = async (): Promise<Attempt> => {
    [ordered, open] = [ordered + 1, open + 1];
    const userId = rand() < 0.25 && f.couponHolders.length > 0 ? pick(rand, f.couponHolders) : pick(rand, f.userIds);
    const [c, items] = [{ userId, coupon: free.delete(userId) }, uniformItems(rand, f.productIds).map((i) => ({ ...i, quantity: 2 }))];
    const r = await order(userId, items, c.coupon ? f.refundCouponId : undefined);
    if (r.status !== 201) return (end(c), r);
    refund.placed.push(parse(r.text).orderId);
    refund.couponOrders += c.coupon ? 1 : 0;
    queue.push({ ...c, orderId: refund.placed.at(-1)!, steps: partSteps(items.flatMap((i) => [i.productId, i.productId])) });
    return r;
  };
  /** order-cancel: a uniform order, about 4 in 10 then cancelled by their owner as a free connection's next request. */
  const placeToCancel = async (userId = pick(rand, f.userIds)): Promise<Attempt> => {
    const r = await order(userId, uniformItems(rand, f.productIds));
    if (r.status === 201 && rand() < 0.4) (open++, queue.push({ orderId: parse(r.text).orderId, userId, coupon: false, steps: [null] }));
    return r;
  };
  const step = async (c: Chain): Promise<Attempt> => {
    const [items, kind] = [c.steps[0]!, c.steps[0] ? 'refund' : 'cancel'];
    const r = await exchange('POST', `/orders/${c.orderId}/${items ? 'refunds' : 'cancel'}`, c.userId, items ? { items } : undefined);
    const b = r.status === (items ? 201 : 200) ? (parse(r.text) ?? {}) : null;
    if (r.status === 429) {
      refund.requeued++;
      setTimeout(() => queue.push(c), 50);
    } else if (!b) {
      refund.problems.push(`${kind} of ${c.orderId}: ${r.status} ${r.code}`);
      open--;
    } else {
      const good = b.orderId === c.orderId && (items
        ? b.order?.status === 'PARTIALLY_REFUNDED' && typeof b.refundId === 'string' && Number.isInteger(b.amount) && isDeepStrictEqual(b.items, items)
        : b.userId === c.userId && b.status === 'CANCELLED' && typeof b.cancelledAt === 'string');
      if (!good) refund.problems.push(`${kind} of ${c.orderId} answered ${r.text.slice(0, 600)}`);
      if (items) (refund.refundIds[c.orderId] ??= []).push(String(b.refundId));
      c.steps.shift();
      if (items) queue.push(c);
      else end(c);
    }
    return { status: r.status, code: r.code, kind: items ? REFUND : CANCEL };
  };
  const order = async (userId: number, items: Items, couponId?: number) => {
    const body = JSON.stringify(couponId === undefined ? { userId, items } : { userId, items, couponId });
    const key = plan.keyed && (!phase || phase.keyed) ? randomUUID() : undefined;
    const first = await exchange('POST', '/orders', userId, body, key);
    if (first.status === 201 && key) {
      if (first.replayed !== undefined) replays.firstAnswersMarkedReplayed++;
      if (replayRand() < plan.replayShare) {
        const p = replay(userId, body, key, first.text).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    }
    return { ...first, kind: ORDER };
  };
  const holders = [...f.couponHolders];
  const requests: Record<Requests, (index: number) => Promise<Attempt> | 'wait' | null> = {
    uniform: () => order(pick(rand, f.userIds), uniformItems(rand, f.productIds)),
    'product-read': () => exchange('GET', `/products/${pick(rand, f.productIds)}`, null),
    floor: () => exchange('POST', '/bench/floor', null, { userId: pick(rand, f.userIds), items: uniformItems(rand, f.productIds) }),
    hot: () => order(pick(rand, f.userIds), [{ productId: plan.productId, quantity: 1 }]),
    'coupon-burst': (index, userId = f.userIds[index % f.userIds.length]!) => exchange('POST', `/coupons/${f.couponId}/issue`, userId, { userId }),
    // A free connection takes a queued step before a new order; once every order is sent, it waits for the chains still open.
    refund: (_, queued = queue.shift()) => (queued ? step(queued) : ordered < plan.refundOrders ? placeToRefund() : open > 0 ? 'wait' : null),
    'order-cancel': (_, queued = queue.shift()) => (queued ? step(queued) : placeToCancel()),
    // 70 % product reads, 10 % balance reads, 5 % charges, 15 % orders (a fifth with a coupon).
    mixed: () => {
      const r = rand();
      if (r < 0.7) return exchange('GET', rand() < 0.9 ? `/products/${pick(rand, f.productIds)}` : '/products?limit=20', null);
      const userId = pick(rand, f.userIds);
      if (r < 0.8) return exchange('GET', `/users/${userId}/balance`, userId);
      if (r < 0.85) return exchange('POST', `/users/${userId}/balance/charge`, userId, { amount: 10_000 });
      const items = uniformItems(rand, f.productIds);
      return rand() < 0.2 && holders.length > 0 ? order(holders.pop()!, items, f.mixedCouponId) : order(userId, items);
    },
  };
  // Phases flip on a timed window's clock only: a counted shape with phaseMs would otherwise never send a key.
  const phase = plan.keyed && plan.phaseMs > 0 && plan.shape.kind === 'timed' ? { ms: plan.phaseMs, keyed: false } : undefined;
  const result = await closedLoop(plan.shape, plan.connections, requests[plan.requests], phase);
  while (inFlight.size > 0) await Promise.all([...inFlight]); // the replays it scheduled still count
  await pool.close();
  const refunds = plan.requests === 'refund';
  // Replays are requests the service served in the window too: its CPU per request counts them (per order, their work is charged to the orders).
  const inWindow = replaySpans.filter(([a, b]) => a >= result.window[0] && b <= result.window[1]).length;
  return { ...result, refund: refunds ? refund : undefined, replays: plan.keyed && !refunds ? { ...replays, inWindow, latencyMs: percentiles(replayMs) } : undefined,
    interleaved: phase ? interleavedPhases(result, replaySpans) : undefined };
}

/**
 * An interleaved window's phases, edge to edge, every other one keyed (the first not): the orders answered 201 and the requests (replays
 * included) that ended in each. An order sent as a phase closes counts in the next, where most of its answer's work is done.
 */
export function interleavedPhases({ samples, window: [start], bounds }: Pick<LoadResult, 'samples' | 'window' | 'bounds'>, replaySpans: ReadonlyArray<readonly [number, number]>) {
  const phases = bounds.slice(1).map((to, i) => ({ keyed: i % 2 === 1, from: bounds[i]!, to, orders: 0, requests: 0 }));
  const at = (t: number) => phases.find((p) => t >= p.from && t < p.to);
  for (const s of samples) {
    const p = at(start + s[0] + s[1]);
    if (p) [p.orders, p.requests] = [p.orders + (s[4] === ORDER && s[2] === 201 ? 1 : 0), p.requests + 1];
  }
  for (const [, end] of replaySpans) {
    const p = at(end);
    if (p) p.requests++;
  }
  return phases.map(({ keyed, orders, requests }) => ({ keyed, orders, requests }));
}

/** The ceilings, with as many concurrent callers as the HTTP load has connections and a pool as the service's. */
async function ceiling(plan: CeilingPlan) {
  const db = openDatabase({ connectionString: plan.databaseUrl, max: plan.poolSize, applicationName: 'bench-ceiling' });
  const book = pgOrderBook(db.kysely, { writesInFlight: plan.orderWrites });
  const deps = { uow: new PgUnitOfWork(db.kysely), book, reads: pgReadStore(db.kysely), clock: systemClock, ids: uuidV7 };
  const rand = seededRandom(plan.seed);
  const answer = (code: string): Attempt => (code === 'PLACED'
    ? { status: 201, code: '', kind: ORDER }
    : { status: ['USER_NOT_FOUND', 'PRODUCT_NOT_FOUND'].includes(code) ? 404 : 400, code, kind: ORDER });
  const serviceSql = (userId: number, items: Items) => placeOrder(deps, { actor: { role: 'user', userId }, userId, items })
    .then(() => answer('PLACED'), (err) => (isDomainError(err) ? answer(err.code) : Promise.reject(err)));
  const attempt = (): Promise<Attempt> => {
    const [userId, productId] = [pick(rand, plan.userIds), plan.productIds[0]!];
    if (plan.productIds.length > 1) return serviceSql(userId, uniformItems(rand, plan.productIds));
    return plan.variant === 'plain-row-lock' ? plainRowLockOrder(db.pool, userId, productId).then(answer) : serviceSql(userId, [{ productId, quantity: 1 }]);
  };
  // Every connection open before measuring, as the service's pool and the load's sockets are.
  await Promise.all(Array.from({ length: plan.poolSize }, () => ping(db.kysely)));
  const result = await closedLoop(plan.shape, plan.connections, attempt);
  await db.close();
  return result;
}

// Forked by runInChild: one plan in, one result out, then exit.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.once('message', (plan: LoadPlan | CeilingPlan) => {
    (plan.kind === 'load' ? load(plan) : ceiling(plan)).then(
      (result) => process.send!({ type: 'result', result } satisfies Message, () => process.exit(0)),
      (err) => {
        process.stderr.write(`${plan.kind} process failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
