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
} from '@shop/domain';
import { fingerprint, once, type IdempotencyKey } from '../idempotency.ts';
import type { Clock, IdGenerator, ReadStore, UnitOfWork } from '../ports/index.ts';

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
  /** Told after a commit that recorded events, so the relay delivers them now, not at its next poll. */
  readonly events?: { recorded(): void };
}

/**
 * Places and pays an order in one transaction. The locks are taken in the global lock order
 * (balance, held coupon, products by id; see ADR 0001) and the checks then run in the contract's
 * error order (user, products, stock, coupon, balance).
 */
export async function placeOrder(deps: PlaceOrderDeps, cmd: PlaceOrderCommand): Promise<PlaceOrderResult> {
  const lines = orderLinesInLockOrder(cmd.items);
  const couponId = cmd.couponId ?? null;
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
        // Locks go balance → held coupon → products, the product rows last: in a flash sale every
        // buyer waits on one product row, so it is held only for the write and the commit.
        const balance = await tx.balances.lock(cmd.userId);
        if (balance === null) throw new DomainError('USER_NOT_FOUND', `no user with id ${cmd.userId}`);
        const held = couponId === null ? null : await tx.coupons.lockHeld(cmd.userId, couponId);
        const products = await tx.products.lockForUpdate(lines.map((l) => l.productId));
        // Judged in the contract's order, now that every row is locked.
        const allocated = allocateStock(lines, products);
        const lineOf = new Map(allocated.map((l) => [l.productId, l]));
        const now = deps.clock.now();
        const discountAmount = couponId === null ? 0 : redeemCoupon(held, now, totalOf(allocated));
        const order = paidOrder({
          orderId: deps.ids.next(),
          userId: cmd.userId,
          lines: cmd.items.map((item) => lineOf.get(item.productId)!),
          couponId,
          discountAmount,
          createdAt: now,
        });
        const balanceAfter = payFromBalance(balance, order.paidAmount);
        await tx.orders.recordPaid({
          order,
          balanceAfter,
          event: orderPaidEvent(deps.ids.next(), order),
        });
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
