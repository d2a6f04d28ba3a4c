import { couponIssued, observeLockWaits, productStock } from '@shop/adapters-postgres/bench';
import { clusterDeliveryWorkload, mixedUncachedWorkload, replicaReadsWorkload } from '@shop/local-clusters/bench';
import type { LoadResult, Requests } from './run/child.ts';
import { checkRefund, refundBefore, refundWindow } from './run/refund.ts';
import { find, ratio, type RunRecord, type WorkloadName } from './run/report.ts';
import { fmt, latency, type Shape } from './run/stats.ts';
import { BURST_COUPONS, HOT_STOCK, type Fixture, type Target } from './run/target.ts';

export type Options = {
  readonly connections: number; readonly timed: Extract<Shape, { kind: 'timed' }>; readonly hotAttempts: number; readonly refundOrders: number;
};

/** What a workload's check sees: the run it made (to add its figures to), the database, the fixture, what `before` returned. */
export type Checked = { readonly run: RunRecord; readonly result: LoadResult; readonly target: Target; readonly fixture: Fixture; readonly state: unknown };

/** A workload: what its load sends, how long, what it checks and reports; its ceilings run after it and its keyed twin (the pair meets one server). */
export interface Workload {
  readonly name: WorkloadName; readonly requests: Requests; readonly keyed?: boolean; readonly shape: (o: Options, f: Fixture) => Shape;
  /** The hot product its service run sells out (HOT_STOCK each); the ceiling runs after it: the Node runners with their products, then pgbench. */
  readonly hotProduct?: (f: Fixture) => number;
  readonly ceilings?: ReadonlyArray<{ variant: 'ceiling' | 'plain-row-lock'; products: (f: Fixture) => readonly number[] }>;
  /** Set up before its run (what it returns goes to `edge`, `after` and `check`); told each edge of its window; figures of its own as its load ends. */
  readonly before?: (t: Target, f: Fixture, o: Options) => Promise<unknown> | unknown;
  readonly edge?: (state: unknown) => void;
  readonly after?: (state: unknown, t: Target) => Promise<Partial<RunRecord>> | Partial<RunRecord> | void;
  /** What its CPU is divided by instead of its orders; its own invariants (violations; may add figures to the run); its line in the Targets. */
  readonly operations?: (result: LoadResult) => number;
  readonly check?: (c: Checked) => Promise<string[]> | string[];
  readonly target?: (run: RunRecord, runs: readonly RunRecord[]) => string;
}

/** Every hot run, service or Node ceiling, sells exactly HOT_STOCK units and no more. */
export async function checkSoldOut({ run, target }: Pick<Checked, 'run' | 'target'>, productId: number): Promise<string[]> {
  const [sold, soldOut] = [run.summary.outcomes['201'] ?? 0, run.summary.outcomes['400 OUT_OF_STOCK'] ?? 0];
  const stock = await productStock(target.pool, productId);
  // Sales per second while there was stock: the figure a flash sale cares about.
  const lastSale = Math.max(...run.samples.filter((s) => s[2] === 201).map((s) => s[0] + s[1]));
  run.salesPerSecond = Math.round((sold / (lastSale / 1000)) * 100) / 100;
  if (sold === HOT_STOCK && soldOut === run.summary.requests - HOT_STOCK && stock === 0) return [];
  return [`${run.label}: ${sold} sold, ${soldOut} OUT_OF_STOCK, stock left ${stock}; expected exactly ${HOT_STOCK} sold and stock 0`];
}

const timed = (o: Options) => o.timed;
const hot = (name: WorkloadName, product: (f: Fixture) => number, keyed = false): Workload => ({
  name, requests: 'hot', keyed, shape: (o) => ({ kind: 'count', attempts: o.hotAttempts }), hotProduct: product,
  check: (c) => checkSoldOut(c, product(c.fixture)),
});

/** In the order they run. */
export const WORKLOADS: readonly Workload[] = [
  {
    // The HTTP edge alone: a route that does nothing (no token, no database) behind every hook and plugin the real ones have. Only with BENCH_FLOOR_ROUTE=1.
    name: 'floor', requests: 'floor', shape: timed,
    check: ({ run }) => (run.summary.outcomes['201'] === run.summary.requests ? [] : [`floor: answered ${JSON.stringify(run.summary.outcomes)}, ` +
      'expected 201 to all (a service under --url needs BENCH_FLOOR_ROUTE=1)']),
  },
  { name: 'product-read', requests: 'product-read', shape: timed }, // GET /products/{id} of random products, no token
  { name: 'uniform', requests: 'uniform', shape: timed, ceilings: [{ variant: 'ceiling', products: (f) => f.productIds }] },
  { name: 'uniform-keyed', requests: 'uniform', keyed: true, shape: timed },
  {
    ...hot('hot-product', (f) => f.hot.service),
    ceilings: [{ variant: 'ceiling', products: (f) => [f.hot.serviceSql] }, { variant: 'plain-row-lock', products: (f) => [f.hot.plainRowLock] }],
  },
  hot('hot-product-keyed', (f) => f.hot.keyed, true),
  {
    // Every user once, at a 100-copy coupon: the losers' answers, and how many sessions queue on a lock.
    name: 'coupon-burst', requests: 'coupon-burst', shape: (_, f) => ({ kind: 'count', attempts: f.userIds.length }),
    before: (t) => observeLockWaits(t.pool),
    after: async (locks) => ({ lockWaits: await (locks as ReturnType<typeof observeLockWaits>).stop() }),
    async check({ run, target, fixture }) {
      run.exhaustedP99Ms = latency(run.samples, (s) => s[3] === 'COUPON_EXHAUSTED').p99;
      const [issued, exhausted] = [run.summary.outcomes['201'] ?? 0, run.summary.outcomes['409 COUPON_EXHAUSTED'] ?? 0];
      const c = await couponIssued(target.pool, fixture.couponId);
      if ([issued, c.issued, c.holders].every((n) => n === BURST_COUPONS) && exhausted === run.summary.requests - BURST_COUPONS) return [];
      return [`coupon-burst: ${issued} answered 201, ${c.issued} counted, ${c.holders} holders; expected exactly ${BURST_COUPONS}, the rest COUPON_EXHAUSTED`];
    },
    target: ({ exhaustedP99Ms, lockWaits: l }) =>
      `coupon-burst: COUPON_EXHAUSTED answered with p99 ${fmt(exhaustedP99Ms ?? 0)} ms; sessions waiting on a lock: at most ${l?.max ?? '?'}, ` +
      `on average ${l?.mean ?? '?'} (${l?.samples ?? 0} samples)`,
  },
  { name: 'mixed', requests: 'mixed', shape: timed },
  // Across servers (packages/local-clusters/src/bench): mixed's catalog on a streaming replica, set against mixed-uncached (both without the
  // product cache); delivery to 3 JetStream nodes, one killed mid-window.
  { name: 'mixed-uncached', requests: 'mixed', shape: timed, ...mixedUncachedWorkload },
  { name: 'mixed-replica', requests: 'mixed', shape: timed, ...replicaReadsWorkload },
  { name: 'nats-cluster', requests: 'order-cancel', shape: timed, ...clusterDeliveryWorkload },
  {
    // Orders (a fifth or more with a coupon), each refunded in 1–2 random parts, then cancelled by its owner; the loop ends with the last cancel.
    name: 'refund', requests: 'refund', shape: () => ({ kind: 'count', attempts: Number.POSITIVE_INFINITY }),
    operations: (r) => refundWindow(r.samples, r.windowMs).operations, before: refundBefore, check: checkRefund,
    target: ({ refund }, runs, w = refund!.window, u = find(runs, 'uniform')) => 'refund (orders given back in 1–2 parts, then cancelled): ' +
      (['orders', 'refunds', 'cancels'] as const).map((k) => `${fmt(w[k].perSecond)} ${k}/s (p99 ${fmt(w[k].latencyMs.p99)} ms)`).join(' + ') +
      ` = ${fmt(w.operationsPerSecond)} operations/s${u ? ` (uniform: ${fmt(u.summary.ordersPerSecond)} orders/s)` : ''}`,
  },
  {
    // uniform while every delivery takes a second to be answered (within DATA_PLATFORM_TIMEOUT_MS): the relay falls behind, the orders must not.
    name: 'slow-platform', requests: 'uniform', shape: timed,
    before: (t) => {
      if (!t.receiver) throw new Error('slow-platform needs the benchmark to start the service (no --url)');
      t.receiver.delayMs = 1_000;
    },
    after: (_, t) => void (t.receiver!.delayMs = 0),
    target: ({ summary: s }, runs, u = find(runs, 'uniform')?.summary) => (!u ? '' : 'slow-platform (every event delivery answered after 1 s): ' +
      `${fmt(s.ordersPerSecond)} orders/s = **${ratio(s.ordersPerSecond, u.ordersPerSecond) ?? '–'}×** uniform's with a prompt platform; ` +
      `p99 ${fmt(s.latencyMs.p99)} ms vs ${fmt(u.latencyMs.p99)} ms`),
  },
];
