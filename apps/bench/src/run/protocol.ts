/** What the orchestrator and its child processes (HTTP load, Node ceiling) say to each other. */

export const WORKLOAD_NAMES = [
  'uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed', 'coupon-burst', 'mixed', 'slow-platform', 'refund',
] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** The data the workloads draw from, seeded through the admin API (or, at --scale, sampled). */
export interface Fixture {
  readonly userIds: readonly number[];
  readonly productIds: readonly number[];
  /** One HOT_STOCK product per hot run, so that every hot run sells out a product of its own. */
  readonly hot: { readonly service: number; readonly keyed: number; readonly serviceSql: number; readonly plainRowLock: number };
  /** coupon-burst's coupon, BURST_COUPONS copies. */
  readonly couponId: number;
  /** mixed: users granted its coupon, each usable once. */
  readonly couponHolders: readonly number[];
  readonly mixedCouponId: number;
}

/** Either a timed window after a warm-up, or a fixed number of attempts, all measured. */
export type Shape =
  | { readonly kind: 'timed'; readonly warmupMs: number; readonly durationMs: number }
  | { readonly kind: 'count'; readonly attempts: number };

/** What the HTTP load process sends (load-process.ts). */
export type Requests = 'uniform' | 'hot' | 'coupon-burst' | 'mixed' | 'refund';

export interface LoadPlan {
  readonly kind: 'load';
  readonly requests: Requests;
  /** Every order with its own Idempotency-Key, and `replayShare` of those answered 201 sent again. */
  readonly keyed: boolean;
  readonly replayShare: number;
  /** hot: the product every order buys. */
  readonly productId: number;
  readonly baseUrl: string;
  readonly authSecret: string;
  readonly connections: number;
  readonly shape: Shape;
  readonly fixture: Fixture;
  readonly seed: number;
}

/** The service's order code without HTTP, or the plain row-lock transaction, from one Node process. */
export interface CeilingPlan {
  readonly kind: 'ceiling';
  readonly variant: 'service-sql' | 'plain-row-lock';
  /** Each order: 1–3 of these products, 1 unit each; or with one product, that one. */
  readonly productIds: readonly number[];
  readonly userIds: readonly number[];
  readonly databaseUrl: string;
  /** Concurrent callers, as many as the HTTP load's connections, sharing `poolSize` connections. */
  readonly connections: number;
  readonly poolSize: number;
  /** Group writes in flight, as the service's ORDER_WRITES_IN_FLIGHT. */
  readonly orderWrites: number;
  readonly shape: Shape;
  readonly seed: number;
}

/**
 * One measured request: start (ms since the window opened), latency (ms), status, error code, and
 * what it was: 1 an order, 2 a cancellation, 0 anything else.
 */
export type Sample = [start: number, latencyMs: number, status: number, code: string, kind: 0 | 1 | 2];
export const ORDER = 1;
export const CANCEL = 2;

export interface LoadResult {
  readonly samples: Sample[];
  readonly windowMs: number;
  /** Requests that failed below HTTP (refused, reset, timeout). */
  readonly transportErrors: number;
  /** Keyed runs: the orders sent again (not samples: not new orders). */
  readonly replays?: ReplayStats;
  /** refund: its orders and cancellations over the whole run, window or not. */
  readonly refund?: RefundLoad;
}

/** Keyed runs: orders answered 201 sent again 5–100 ms later, same key and body, whole run. */
export interface ReplayStats {
  readonly sent: number;
  /** Answered 201, `idempotent-replayed: true`, the first body (deep-equal; byte for byte). */
  readonly matched: number;
  readonly byteIdentical: number;
  readonly mismatched: number;
  readonly mismatchKinds: Record<string, number>;
  readonly examples: string[];
  /** First answers (a fresh key) marked `idempotent-replayed`: a key collision or a bug. */
  readonly firstAnswersMarkedReplayed: number;
  readonly latencyMs: { p50: number; p99: number; max: number };
}

/** refund, whole run: orders answered 201 (in order), their cancellations and how each was answered. */
export interface RefundLoad {
  readonly placed: string[];
  readonly cancelsSent: number;
  /** Sent after the closed loop ended: not samples. */
  readonly cancelsAfterLoop: number;
  readonly cancelled: string[];
  readonly refused: Array<[orderId: string, outcome: string]>;
  /** "200", "409 ORDER_NOT_CANCELLABLE", "0 ECONNRESET", … */
  readonly outcomes: Record<string, number>;
  /** 200 answers whose body was not this order, CANCELLED, with a cancelledAt. */
  readonly badBodies: number;
  readonly examples: string[];
}

/** Child → orchestrator: progress, the measured window's edges (CPU is sampled there), the result. */
export type ChildMessage =
  | { readonly type: 'progress'; readonly done: number; readonly total: number; readonly phase: string }
  | { readonly type: 'edge'; readonly edge: 'start' | 'end' }
  | { readonly type: 'result'; readonly result: LoadResult };
