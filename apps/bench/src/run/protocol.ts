/** What the orchestrator, the load process and the ceiling process say to each other. */

export type WorkloadName =
  | 'uniform'
  | 'uniform-keyed'
  | 'hot-product'
  | 'hot-product-keyed'
  | 'coupon-burst'
  | 'mixed'
  | 'slow-platform'
  | 'refund';

/** The twins that send every order with its own Idempotency-Key and replay some of them. */
export type KeyedWorkload = 'uniform-keyed' | 'hot-product-keyed';
export const KEYED_TWIN = { 'uniform-keyed': 'uniform', 'hot-product-keyed': 'hot-product' } as const satisfies Record<KeyedWorkload, WorkloadName>;
export const isKeyed = (w: WorkloadName): w is KeyedWorkload => w in KEYED_TWIN;

/** The data a workload draws from, created by the seed through the admin API. */
export interface Fixture {
  readonly userIds: readonly number[];
  readonly productIds: readonly number[];
  readonly hotProductId: number;
  /** hot-product-keyed's own hot product, with the same HOT_STOCK, so both runs sell it out. */
  readonly hotKeyedProductId: number;
  readonly couponId: number;
  /** Users granted the mixed workload's coupon, each usable once. */
  readonly couponHolders: readonly number[];
  readonly mixedCouponId: number;
}

/** Either a timed window after a warm-up, or a fixed number of attempts. */
export type Shape =
  | { readonly kind: 'timed'; readonly warmupMs: number; readonly durationMs: number }
  | { readonly kind: 'count'; readonly attempts: number };

export interface LoadPlan {
  readonly workload: WorkloadName;
  readonly baseUrl: string;
  readonly authSecret: string;
  readonly connections: number;
  readonly shape: Shape;
  readonly fixture: Fixture;
  readonly seed: number;
  /** Keyed workloads: the share of orders answered 201 that are sent again. */
  readonly replayShare: number;
}

/**
 * One measured request: start (ms since the window opened), latency (ms), status, error code, and
 * what it was: 1 an order (POST /orders), 2 a cancellation (POST /orders/{orderId}/cancel), 0 anything else.
 */
export type Sample = [start: number, latencyMs: number, status: number, code: string, kind: SampleKind];
export type SampleKind = 0 | 1 | 2;
export const ORDER: SampleKind = 1;
export const CANCEL: SampleKind = 2;

export interface LoadResult {
  readonly samples: Sample[];
  /** Length of the measured window in ms. */
  readonly windowMs: number;
  /** Requests that failed below HTTP (refused, reset, timeout). */
  readonly transportErrors: number;
  /** The keyed workloads' replays, which are not samples (not new orders). */
  readonly replays?: ReplayStats;
  /** The refund workload's orders and cancellations over the whole run, window or not. */
  readonly refund?: RefundLoad;
}

/**
 * refund: what the load process placed and cancelled over the whole run (the samples hold only the
 * measured window; cancellations still queued when the loop ended are sent after it, unmeasured).
 */
export interface RefundLoad {
  /** Every order answered 201, in the order the answers arrived. */
  readonly placed: string[];
  /** Cancellations sent: one for every second order of `placed`. */
  readonly cancelsSent: number;
  /** Of them, sent after the closed loop ended (not samples). */
  readonly cancelsAfterLoop: number;
  /** Orders whose cancellation was answered 200. */
  readonly cancelled: string[];
  /** Cancellations answered otherwise: [orderId, "409 ORDER_NOT_CANCELLABLE" | "0 ECONNRESET" | …]. */
  readonly refused: Array<[orderId: string, outcome: string]>;
  /** Every cancellation's outcome: "200", "409 ORDER_NOT_CANCELLABLE", … */
  readonly outcomes: Record<string, number>;
  /** 200 answers whose body was not this order, CANCELLED, with a cancelledAt. */
  readonly badBodies: number;
  readonly examples: string[];
}

/**
 * Keyed workloads: orders answered 201 that were sent again, shortly after, with the same
 * Idempotency-Key and the same body, over the whole run (warm-up included).
 */
export interface ReplayStats {
  readonly sent: number;
  /** 201, `idempotent-replayed: true`, body deep-equal to the first answer. */
  readonly matched: number;
  /** Of the matched, those whose body was byte-for-byte the first answer's. */
  readonly byteIdentical: number;
  readonly mismatched: number;
  /** Mismatches by kind ("status 409 IDEMPOTENCY_KEY_IN_USE", "body differs", …). */
  readonly mismatchKinds: Record<string, number>;
  /** A few mismatches in full, for the report. */
  readonly examples: string[];
  /** First answers (a fresh key) that came marked `idempotent-replayed`: a key collision or a bug. */
  readonly firstAnswersMarkedReplayed: number;
  readonly latencyMs: { p50: number; p99: number; max: number };
}

export type Progress = { readonly type: 'progress'; readonly done: number; readonly total: number; readonly phase: string };

/** The measured window opens or closes (the orchestrator samples CPU and pg_stat_statements then). */
export type WindowEdge = 'start' | 'end';
export type EdgeMessage = { readonly type: 'edge'; readonly edge: WindowEdge };
export const sendEdge = (edge: WindowEdge) => process.send!({ type: 'edge', edge } satisfies EdgeMessage);

export type CeilingVariant = 'service-sql' | 'plain-row-lock';

export interface CeilingPlan {
  readonly workload: 'uniform' | 'hot-product';
  readonly variant: CeilingVariant;
  readonly databaseUrl: string;
  /** Concurrent callers, as many as the HTTP load's connections. */
  readonly connections: number;
  /** Database connections they share, as many as the service's pool. */
  readonly poolSize: number;
  /** Group writes in flight, as the service's ORDER_WRITES_IN_FLIGHT. */
  readonly orderWrites: number;
  readonly shape: Shape;
  readonly userIds: readonly number[];
  readonly productIds: readonly number[];
  readonly seed: number;
}
