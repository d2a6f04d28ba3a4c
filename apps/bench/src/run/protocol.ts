/** What the orchestrator, the load process and the ceiling process say to each other. */

export type WorkloadName = 'uniform' | 'hot-product' | 'coupon-burst' | 'mixed' | 'slow-platform';

/** The data a workload draws from, created by the seed through the admin API. */
export interface Fixture {
  readonly userIds: readonly number[];
  readonly productIds: readonly number[];
  readonly hotProductId: number;
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
}

/** One measured request: start (ms since the window opened), latency (ms), status, error code. */
export type Sample = [start: number, latencyMs: number, status: number, code: string, isOrder: 0 | 1];

export interface LoadResult {
  readonly samples: Sample[];
  /** Length of the measured window in ms. */
  readonly windowMs: number;
  /** Requests that failed below HTTP (refused, reset, timeout). */
  readonly transportErrors: number;
}

export type Progress = { readonly type: 'progress'; readonly done: number; readonly total: number; readonly phase: string };

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
