import { beforeEach, describe, expect, test } from 'vitest';
import { cancelOrder, placeOrder, type CancelOrderCommand } from '@shop/application';
import { admin, user } from './actors.ts';
import { DAY, NOW, orderChangeWorld } from './order-change-world.ts';

let { shop, clock, deps, paidOrder: paid } = orderChangeWorld();
beforeEach(() => {
  ({ shop, clock, deps, paidOrder: paid } = orderChangeWorld());
});

/** A paid order of 2 units at 1,000 with a 300 coupon: balance 10,000 → 8,300, stock 5 → 3. */
const paidOrder = () => paid(2);

async function failure(cmd: CancelOrderCommand): Promise<string> {
  const before = shop.snapshot();
  const error = await cancelOrder(deps, cmd).then(
    () => null,
    (e: { code?: string }) => e,
  );
  expect(error, 'the cancellation should have failed').not.toBeNull();
  expect(shop.state).toEqual(before);
  expect(deps.events.recorded).not.toHaveBeenCalled();
  return error!.code ?? String(error);
}

describe('cancelOrder', () => {
  test('gives back exactly what the order took: stock, payment (a REFUND entry), the coupon copy; one event', async () => {
    const { order, userId, productId, couponId } = await paidOrder();
    clock.advance(DAY);
    const { order: cancelled, replayed } = await cancelOrder(deps, { orderId: order.orderId, actor: admin });
    expect(replayed).toBe(false);
    expect(cancelled).toEqual({
      ...order,
      status: 'CANCELLED',
      cancelledAt: new Date(NOW.getTime() + DAY),
      refundedAmount: order.paidAmount,
      items: order.items.map((l) => ({ ...l, refundedQuantity: l.quantity })),
    });
    expect(shop.state.users.get(userId)!.balance).toBe(10_000);
    expect(shop.state.products.get(productId)!.stock).toBe(5);
    expect(shop.state.held.get(`${userId}:${couponId}`)).toMatchObject({ usedAt: null, orderId: null });
    expect(shop.state.ledger.at(-1)).toMatchObject({ type: 'REFUND', amount: 1_700, balanceAfter: 10_000, orderId: order.orderId });
    expect(shop.state.outbox.at(-1)).toMatchObject({ type: 'order.cancelled', data: { orderId: order.orderId, refundedAmount: 1_700 } });
    expect(deps.events.recorded).toHaveBeenCalledTimes(1);
  });

  test('an unknown order is ORDER_NOT_FOUND to anyone, before any refusal', async () => {
    const { userId } = await paidOrder();
    for (const actor of [user(userId), user(userId + 1), admin]) {
      expect(await failure({ orderId: 'no-such-order', actor })).toBe('ORDER_NOT_FOUND');
    }
  });

  test("another user may not cancel the order: FORBIDDEN, nothing changed; its owner may", async () => {
    const { order, userId } = await paidOrder();
    expect(await failure({ orderId: order.orderId, actor: user(userId + 1) })).toBe('FORBIDDEN');
    expect((await cancelOrder(deps, { orderId: order.orderId, actor: user(userId) })).order.status).toBe('CANCELLED');
  });

  test('already cancelled, or older than the window: ORDER_NOT_CANCELLABLE, nothing changed', async () => {
    const { order } = await paidOrder();
    clock.advance(7 * DAY + 1);
    expect(await failure({ orderId: order.orderId, actor: admin })).toBe('ORDER_NOT_CANCELLABLE');
    deps = { ...deps, cancelDays: 8 };
    await cancelOrder(deps, { orderId: order.orderId, actor: admin });
    deps.events.recorded.mockClear();
    expect(await failure({ orderId: order.orderId, actor: admin })).toBe('ORDER_NOT_CANCELLABLE');
  });

  test("a key replays the cancellation; the same key on another order is IDEMPOTENCY_KEY_REUSED; it lives in the owner's keys", async () => {
    const { order, userId } = await paidOrder();
    const first = await cancelOrder(deps, { orderId: order.orderId, idempotencyKey: 'k1', actor: admin });
    expect(shop.state.idempotency.has(`${userId}:k1`)).toBe(true);
    const again = await cancelOrder(deps, { orderId: order.orderId, idempotencyKey: 'k1', actor: admin });
    expect(again).toEqual({ order: first.order, replayed: true });
    expect(shop.state.ledger.filter((e) => e.type === 'REFUND')).toHaveLength(1);

    const productId = shop.addProduct(100, 1);
    const { order: other } = await placeOrder(deps, { actor: user(userId), userId, items: [{ productId, quantity: 1 }] });
    deps.events.recorded.mockClear();
    expect(await failure({ orderId: other.orderId, idempotencyKey: 'k1', actor: admin })).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  test('a replay is authorized too: another user cannot read a cancellation through its key', async () => {
    const { order, userId } = await paidOrder();
    await cancelOrder(deps, { orderId: order.orderId, idempotencyKey: 'k1', actor: user(userId) });
    deps.events.recorded.mockClear();
    expect(await failure({ orderId: order.orderId, idempotencyKey: 'k1', actor: user(userId + 1) })).toBe('FORBIDDEN');
  });

  test('cancels of one order decided on the same snapshot: one is written, the other decides again and is refused', async () => {
    const { order, userId } = await paidOrder();
    // Both read the order PAID before either writes.
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((r) => (release = r));
    shop.afterSnapshot = async () => {
      if (++arrived === 2) release();
      if (arrived <= 2) await bothRead;
    };
    const results = await Promise.allSettled([
      cancelOrder(deps, { orderId: order.orderId, actor: admin }),
      cancelOrder(deps, { orderId: order.orderId, actor: admin }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason.code).toBe('ORDER_NOT_CANCELLABLE');
    expect(shop.guardFailures).toBe(1);
    expect(shop.state.users.get(userId)!.balance).toBe(10_000);
    expect(shop.state.ledger.filter((e) => e.type === 'REFUND')).toHaveLength(1);
    expect(deps.events.recorded).toHaveBeenCalledTimes(1);
  });
});
