import type pg from 'pg';
import type { Receiver } from '../../../../test/support/receiver.ts';
import { CANCEL, ORDER, type RefundLoad, type Sample } from './protocol.ts';
import { quantile } from './stats.ts';

/**
 * The refund workload: uniform orders while every second order answered 201 is cancelled by its
 * owner as soon as that answer arrives, over the same connections, so cancellations (stock back,
 * refund, order.cancelled) race new orders (stock taken, payment, order.paid) on the same rows.
 */

type Latency = { p50: number; p95: number; p99: number; max: number };

export interface RefundReport {
  /** The measured window (the closed loop): orders answered 201, cancellations answered 200. */
  readonly window: {
    readonly seconds: number;
    readonly orders: number;
    readonly ordersPerSecond: number;
    readonly cancels: number;
    readonly cancelsPerSecond: number;
    /** Orders + cancellations that succeeded, per second: what the CPU is divided by. */
    readonly operationsPerSecond: number;
    readonly orderLatencyMs: Latency;
    readonly cancelLatencyMs: Latency;
  };
  /** The whole run, the cancellations sent after the loop included. */
  readonly run: {
    readonly placed: number;
    readonly cancelsSent: number;
    readonly cancelsAfterLoop: number;
    readonly cancelOutcomes: Record<string, number>;
    readonly badBodies: number;
  };
  /** What the database holds afterwards. */
  readonly database: {
    /** Of the orders placed, those CANCELLED. */
    readonly cancelled: number;
    /** CANCELLED orders in the whole database, before and after the run. */
    readonly cancelledBefore: number;
    readonly cancelledAfter: number;
  };
  /** Checked against the receiver's deliveries; null when the benchmark did not start it (--url). */
  readonly events: { readonly paidAccepted: number; readonly cancelledAccepted: number } | null;
}

const round = (n: number) => Math.round(n * 100) / 100;

function latency(samples: readonly Sample[], kind: typeof ORDER | typeof CANCEL): Latency {
  const sorted = samples.filter((s) => s[4] === kind).map((s) => s[1]).sort((a, b) => a - b);
  return { p50: round(quantile(sorted, 0.5)), p95: round(quantile(sorted, 0.95)), p99: round(quantile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) };
}

/** Orders and cancellations of the window, each kind on its own. */
export function refundWindow(samples: readonly Sample[], windowMs: number): RefundReport['window'] & { operations: number } {
  const seconds = windowMs / 1000;
  const orders = samples.filter((s) => s[4] === ORDER && s[2] === 201).length;
  const cancels = samples.filter((s) => s[4] === CANCEL && s[2] === 200).length;
  return {
    seconds: round(seconds),
    orders,
    ordersPerSecond: round(orders / seconds),
    cancels,
    cancelsPerSecond: round(cancels / seconds),
    operations: orders + cancels,
    operationsPerSecond: round((orders + cancels) / seconds),
    orderLatencyMs: latency(samples, ORDER),
    cancelLatencyMs: latency(samples, CANCEL),
  };
}

export const countCancelled = async (pool: pg.Pool): Promise<number> =>
  (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE status = 'CANCELLED'`)).rows[0]!.n;

const sample = (ids: readonly string[]) => ids.slice(0, 3).join(', ') + (ids.length > 3 ? ', …' : '');

/**
 * The workload's own invariants, once every event is delivered (the caller waits for that):
 * - one cancellation sent for every second order placed, none answered 5xx or dropped, none
 *   refused but for the per-user rate limit (each is the owner's fresh PAID order), every 200 body
 *   this order CANCELLED;
 * - in the database, the orders placed that are CANCELLED are exactly those answered 200, each
 *   refunded once (one REFUND entry of its paidAmount), the others PAID with no refund; and the
 *   database gained exactly as many CANCELLED orders as there were 200 answers;
 * - at the receiver, every order placed has its order.paid accepted, every cancelled one its
 *   order.cancelled too, accepted after the order.paid, and no other its order.cancelled.
 * Stock + units in PAID orders = initial stock is auditInvariants', at the end of the run.
 */
export async function checkRefund(
  pool: pg.Pool,
  receiver: Receiver | null,
  load: RefundLoad,
  cancelledBefore: number,
): Promise<{ database: RefundReport['database']; events: RefundReport['events']; violations: string[] }> {
  const violations: string[] = [];
  const v = (s: string) => violations.push(`refund: ${s}`);

  const expected = Math.floor(load.placed.length / 2);
  if (load.cancelsSent !== expected) v(`${load.cancelsSent} cancellations sent for ${load.placed.length} orders placed; expected ${expected} (every second one)`);
  const outcomes = Object.entries(load.outcomes);
  const broken = outcomes.filter(([k]) => k.startsWith('5') || k.startsWith('0'));
  if (broken.length > 0) v(`cancellations answered 5xx or dropped: ${JSON.stringify(Object.fromEntries(broken))}`);
  const refused = outcomes.filter(([k]) => k !== '200' && !k.startsWith('429') && !k.startsWith('5') && !k.startsWith('0'));
  if (refused.length > 0) {
    const ids = load.refused.filter(([, o]) => refused.some(([k]) => k === o)).map(([id]) => id);
    v(`owners' cancellations of their fresh PAID orders refused: ${JSON.stringify(Object.fromEntries(refused))} (e.g. ${sample(ids)})`);
  }
  if (load.badBodies > 0) v(`${load.badBodies} 200 answers were not the order, CANCELLED, with a cancelledAt: ${load.examples.slice(0, 2).join(' | ')}`);

  // Every order placed, as the database holds it: status, paid amount, refunds.
  const { rows } = await pool.query<{ id: string; status: string | null; paid: string; refunds: number; refunded: string | null }>(
    `WITH placed AS (SELECT unnest($1::uuid[]) AS id),
          refunds AS (SELECT l.order_id, count(*)::int AS n, sum(l.amount)::bigint AS amount
                      FROM balance_ledger l JOIN placed p ON p.id = l.order_id WHERE l.type = 'REFUND' GROUP BY l.order_id)
     SELECT p.id::text, o.status, o.paid_amount::text AS paid, coalesce(r.n, 0) AS refunds, r.amount::text AS refunded
     FROM placed p LEFT JOIN orders o ON o.id = p.id LEFT JOIN refunds r ON r.order_id = p.id`,
    [load.placed],
  );
  const answered200 = new Set(load.cancelled);
  const missing: string[] = [];
  const notCancelled: string[] = [];
  const cancelledUnanswered: string[] = [];
  const unanswered = new Set<string>();
  const badRefund: string[] = [];
  let cancelled = 0;
  for (const r of rows) {
    if (r.status === null) {
      missing.push(r.id);
      continue;
    }
    const isCancelled = r.status === 'CANCELLED';
    if (isCancelled) cancelled++;
    if (answered200.has(r.id) && !isCancelled) notCancelled.push(`${r.id} (${r.status})`);
    if (!answered200.has(r.id) && isCancelled) {
      cancelledUnanswered.push(r.id);
      unanswered.add(r.id);
    }
    if (isCancelled ? r.refunds !== 1 || r.refunded !== r.paid : r.refunds !== 0) badRefund.push(`${r.id} (${r.status}, paid ${r.paid}, ${r.refunds} refunds of ${r.refunded ?? 0})`);
  }
  if (missing.length > 0) v(`${missing.length} orders answered 201 are not in the database: ${sample(missing)}`);
  if (notCancelled.length > 0) v(`${notCancelled.length} cancellations answered 200 left their order not CANCELLED: ${sample(notCancelled)}`);
  if (cancelledUnanswered.length > 0) v(`${cancelledUnanswered.length} orders are CANCELLED without a 200 answer: ${sample(cancelledUnanswered)}`);
  if (badRefund.length > 0) v(`${badRefund.length} orders not refunded exactly once (a CANCELLED order: one REFUND of its paidAmount; a PAID one: none): ${sample(badRefund)}`);
  const cancelledAfter = await countCancelled(pool);
  if (cancelledAfter - cancelledBefore !== answered200.size) {
    v(`the database gained ${cancelledAfter - cancelledBefore} CANCELLED orders (${cancelledBefore} → ${cancelledAfter}); ${answered200.size} cancellations were answered 200`);
  }
  const database = { cancelled, cancelledBefore, cancelledAfter };
  if (!receiver) return { database, events: null, violations };

  // The receiver's deliveries, in the order it accepted them: each order's first of each type.
  const placed = new Set(load.placed);
  const firstPaid = new Map<string, number>();
  const firstCancelled = new Map<string, number>();
  receiver.accepted.forEach((e, i) => {
    const id = e.body?.data?.orderId as string | undefined;
    if (!id || !placed.has(id)) return;
    const first = e.body.type === 'order.paid' ? firstPaid : e.body.type === 'order.cancelled' ? firstCancelled : null;
    if (first && !first.has(id)) first.set(id, i);
  });
  const noPaid: string[] = [];
  const noCancelled: string[] = [];
  const early: string[] = [];
  const stray: string[] = [];
  for (const id of load.placed) {
    const p = firstPaid.get(id);
    const c = firstCancelled.get(id);
    if (p === undefined) noPaid.push(id);
    if (answered200.has(id)) {
      if (c === undefined) noCancelled.push(id);
      else if (p === undefined || c < p) early.push(id);
    } else if (c !== undefined && !unanswered.has(id)) stray.push(id);
  }
  if (noPaid.length > 0) v(`${noPaid.length} orders placed never had their order.paid accepted: ${sample(noPaid)}`);
  if (noCancelled.length > 0) v(`${noCancelled.length} cancelled orders never had their order.cancelled accepted: ${sample(noCancelled)}`);
  if (early.length > 0) v(`${early.length} orders.cancelled accepted before their order.paid: ${sample(early)}`);
  if (stray.length > 0) v(`${stray.length} orders not cancelled had an order.cancelled delivered: ${sample(stray)}`);
  return { database, events: { paidAccepted: firstPaid.size, cancelledAccepted: firstCancelled.size }, violations };
}
