import {
  DomainError,
  allocateStock,
  orderLinesInLockOrder,
  orderPaidEvent,
  paidOrder,
  payFromBalance,
  redeemCoupon,
  totalOf,
  type Order,
  type RequestedLine,
  type Won,
} from '@shop/domain';
import { fingerprint, once, type IdempotencyKey } from '../idempotency.ts';
import type { Clock, IdGenerator, OrderBook, OrderSnapshot, ReadStore, UnitOfWork } from '../ports/index.ts';

export interface PlaceOrderCommand {
  readonly userId: number;
  readonly items: readonly RequestedLine[];
  readonly couponId?: number | undefined;
  readonly idempotencyKey?: string | undefined;
}

export interface PlaceOrderResult {
  readonly order: Order;
  /** True when the order was placed by an earlier request with the same Idempotency-Key. */
  readonly replayed: boolean;
}

export interface PlaceOrderDeps {
  readonly uow: UnitOfWork;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** The optimistic path; without it every order takes the locking transaction. */
  readonly book?: OrderBook;
  /** Told after a commit that recorded events, so the relay delivers them now, not at its next poll. */
  readonly events?: { recorded(): void };
}

interface Decision {
  readonly order: Order;
  readonly balanceAfter: Won;
}

/**
 * The whole rule of an order, in the contract's error order (user, products, stock, coupon,
 * balance), on values read either under lock or from a snapshot.
 */
function decide(
  deps: Pick<PlaceOrderDeps, 'clock' | 'ids'>,
  cmd: PlaceOrderCommand,
  lines: readonly RequestedLine[],
  seen: OrderSnapshot,
): Decision {
  if (seen.balance === null) throw new DomainError('USER_NOT_FOUND', `no user with id ${cmd.userId}`);
  const allocated = allocateStock(lines, seen.products);
  const lineOf = new Map(allocated.map((l) => [l.productId, l]));
  const now = deps.clock.now();
  const couponId = cmd.couponId ?? null;
  const discountAmount = couponId === null ? 0 : redeemCoupon(seen.held, now, totalOf(allocated));
  const order = paidOrder({
    orderId: deps.ids.next(),
    userId: cmd.userId,
    lines: cmd.items.map((item) => lineOf.get(item.productId)!),
    couponId,
    discountAmount,
    createdAt: now,
  });
  return { order, balanceAfter: payFromBalance(seen.balance, order.paidAmount) };
}

/**
 * Places and pays an order. Without an Idempotency-Key it first decides on an unlocked snapshot
 * and has the order written by a guarded group write (ADR 0006). A refusal from the snapshot is
 * a correct answer as of that instant and needs no lock at all: a sold-out product answers its
 * thousandth buyer without queueing them on its row. When the guarded write finds that something
 * changed since the snapshot, or a key must be honoured, the order runs the locking transaction:
 * locks in the global order (balance, held coupon, products by id; ADR 0001), then the same
 * decision on locked values.
 */
export async function placeOrder(deps: PlaceOrderDeps, cmd: PlaceOrderCommand): Promise<PlaceOrderResult> {
  const lines = orderLinesInLockOrder(cmd.items);
  const couponId = cmd.couponId ?? null;
  const productIds = lines.map((l) => l.productId);

  if (deps.book && !cmd.idempotencyKey) {
    const seen = await deps.book.snapshot(cmd.userId, productIds, couponId);
    const { order } = decide(deps, cmd, lines, seen);
    if (await deps.book.placeIfUnchanged(order, orderPaidEvent(deps.ids.next(), order))) {
      deps.events?.recorded();
      return { order, replayed: false };
    }
  }

  const idem: IdempotencyKey | undefined = cmd.idempotencyKey
    ? { userId: cmd.userId, key: cmd.idempotencyKey }
    : undefined;
  const print = fingerprint('POST /orders', { userId: cmd.userId, items: cmd.items, couponId });
  const outcome = await deps.uow.run((tx) =>
    once<{ orderId: string; order?: Order }>(
      tx,
      idem,
      print,
      { store: ({ orderId }) => ({ orderId }), replay: (stored) => ({ orderId: (stored as { orderId: string }).orderId }) },
      async () => {
        // The product rows last: in a flash sale every buyer waits on one of them.
        const balance = await tx.balances.lock(cmd.userId);
        if (balance === null) throw new DomainError('USER_NOT_FOUND', `no user with id ${cmd.userId}`);
        const held = couponId === null ? null : await tx.coupons.lockHeld(cmd.userId, couponId);
        const products = await tx.products.lockForUpdate(productIds);
        const { order, balanceAfter } = decide(deps, cmd, lines, { balance, products, held });
        await tx.orders.recordPaid({ order, balanceAfter, event: orderPaidEvent(deps.ids.next(), order) });
        return { orderId: order.orderId, order };
      },
    ),
  );

  if (outcome.order) {
    deps.events?.recorded();
    return { order: outcome.order, replayed: false };
  }
  const order = await deps.reads.order(outcome.orderId);
  if (!order) throw new Error(`idempotent replay names order ${outcome.orderId}, which does not exist`);
  return { order, replayed: true };
}
