/**
 * What the clients were told, kept to compare with the database at the end: every order, refund,
 * cancellation, charge and coupon issue answered as done, and those whose fate a client cannot
 * know (its request reached a service and no answer came, or retries gave up).
 */

export type Kind =
  | 'product read'
  | 'product list'
  | 'balance read'
  | 'charge'
  | 'order'
  | 'order replay'
  | 'cancel'
  | 'refund'
  | 'coupon issue';

export type OrderStatus = 'PAID' | 'PARTIALLY_REFUNDED' | 'CANCELLED';

export interface KnownOrder {
  readonly orderId: string;
  readonly userId: number;
  readonly couponId: number | null;
  /** Per product: units bought and units refunded, as the answers said. */
  readonly lines: Map<number, { quantity: number; refunded: number }>;
  /** 'unknown' once a cancel or refund of it is in doubt: not compared then. */
  status: OrderStatus | 'unknown';
  /** A cancel or refund of it in flight: no other is started meanwhile. */
  busy: boolean;
}

export interface OrderAttempt {
  readonly userId: number;
  readonly items: ReadonlyArray<{ productId: number; quantity: number }>;
  readonly couponId: number | null;
}

/**
 * A user's copy of the soak's coupon, as far as the client knows. `issue-unknown`: its issue is in
 * doubt; `use-unknown`: issued, but an order using it, or a cancel giving it back, is in doubt.
 */
export type CouponState = 'none' | 'issuing' | 'held' | 'pending' | 'used' | 'issue-unknown' | 'use-unknown';

export class Ledger {
  readonly orders = new Map<string, KnownOrder>();
  readonly ordersInDoubt: OrderAttempt[] = [];
  /** Orders answered 201, by whether they carried an Idempotency-Key. */
  readonly placed = { keyed: 0, unkeyed: 0 };
  /** refundId → orderId */
  readonly refunds = new Map<string, string>();
  /** orderIds */
  readonly refundsInDoubt: string[] = [];
  readonly cancelled = new Set<string>();
  readonly cancelsInDoubt: string[] = [];
  readonly charges = new Map<number, { confirmed: number; inDoubt: number }>();
  readonly coupons = new Map<number, CouponState>();
  couponExhaustedAnswers = 0;
  readonly replays = { sent: 0, matched: 0, failed: 0, examples: [] as string[] };
  /** 5xx other than 503, and 4xx this load never provokes: each one is a failure. */
  readonly unexpected = new Map<string, number>();
  readonly unexpectedExamples: string[] = [];

  charge(userId: number): { confirmed: number; inDoubt: number } {
    let c = this.charges.get(userId);
    if (!c) this.charges.set(userId, (c = { confirmed: 0, inDoubt: 0 }));
    return c;
  }

  noteUnexpected(what: string, detail: string): void {
    this.unexpected.set(what, (this.unexpected.get(what) ?? 0) + 1);
    if (this.unexpectedExamples.length < 8) this.unexpectedExamples.push(`${what}: ${detail}`.slice(0, 500));
  }

  replayFailed(detail: string): void {
    this.replays.failed++;
    if (this.replays.examples.length < 5) this.replays.examples.push(detail.slice(0, 500));
  }
}

/**
 * Every answer counted, by kind of request and by phase (steady, or the fault under way): `201`,
 * `409 COUPON_EXHAUSTED`, `503`, `refused`, `no answer (UND_ERR_SOCKET)`, `timeout (…)`.
 */
export class Tally {
  readonly byKind = new Map<Kind, Map<string, number>>();
  readonly byPhase = new Map<string, Map<string, number>>();
  /** Requests the pace called for but not sent: the client already had its maximum in flight. */
  readonly skipped = new Map<string, number>();
  total = 0;

  add(kind: Kind, phase: string, outcome: string): void {
    this.total++;
    bump(this.byKind, kind, outcome);
    bump(this.byPhase, phase, outcome);
  }

  skip(phase: string): void {
    this.skipped.set(phase, (this.skipped.get(phase) ?? 0) + 1);
  }
}

function bump<K>(map: Map<K, Map<string, number>>, key: K, outcome: string): void {
  let counts = map.get(key);
  if (!counts) map.set(key, (counts = new Map()));
  counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
}

/** An outcome's group in the per-phase table. */
export function outcomeGroup(outcome: string): '2xx' | '4xx' | '503' | '5xx (not 503)' | 'refused' | 'no answer' | 'timeout' {
  if (outcome === 'refused') return 'refused';
  if (outcome.startsWith('no answer')) return 'no answer';
  if (outcome.startsWith('timeout')) return 'timeout';
  const status = Number(outcome.slice(0, 3));
  if (status === 503) return '503';
  if (status >= 500) return '5xx (not 503)';
  if (status >= 400) return '4xx';
  return '2xx';
}
