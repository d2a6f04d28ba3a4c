import { beforeEach, describe, expect, test } from 'vitest';
import { refundOrder, type RefundOrderCommand } from '@shop/application';
import { admin, user } from './actors.ts';
import { DAY, orderChangeWorld } from './order-change-world.ts';

let { shop, clock, deps, paidOrder: paid } = orderChangeWorld();
beforeEach(() => {
  ({ shop, clock, deps, paidOrder: paid } = orderChangeWorld());
});

/** A paid order of 4 units at 1,000 with a 300 coupon: balance 10,000 → 6,300, stock 5 → 1. */
const paidOrder = () => paid(4);

async function failure(cmd: RefundOrderCommand): Promise<string> {
  const before = structuredClone(shop.state);
  const error = await refundOrder(deps, cmd).then(
    () => null,
    (e: { code?: string }) => e,
  );
  expect(error, 'the refund should have failed').not.toBeNull();
  expect(shop.state).toEqual(before);
  expect(deps.events.recorded).not.toHaveBeenCalled();
  return error!.code ?? String(error);
}

describe('refundOrder', () => {
  test('gives back the units and their share of the payment, and records one event', async () => {
    const { order, userId, productId } = await paidOrder();
    const { refund, order: after, replayed } = await refundOrder(deps, { orderId: order.orderId, items: [{ productId, quantity: 1 }], actor: user(userId) });
    expect(replayed).toBe(false);
    expect(refund.amount).toBe(Math.floor((3_700 * 1_000) / 4_000));
    expect(after).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 925 });
    expect(shop.state.users.get(userId)!.balance).toBe(6_300 + 925);
    expect(shop.state.products.get(productId)!.stock).toBe(2);
    expect(shop.state.outbox.at(-1)).toMatchObject({ type: 'order.refunded', data: { refundId: refund.refundId, refundedAmount: 925 } });
    expect(deps.events.recorded).toHaveBeenCalledTimes(1);
  });

  test('refuses in the contract order: malformed, unknown order, another user, then the units; nothing changed', async () => {
    const { order, userId, productId } = await paidOrder();
    expect(await failure({ orderId: 'no-such-order', items: [], actor: user(userId + 1) })).toBe('VALIDATION_ERROR');
    expect(await failure({ orderId: 'no-such-order', items: [{ productId, quantity: 1 }], actor: admin })).toBe('ORDER_NOT_FOUND');
    expect(await failure({ orderId: order.orderId, items: [{ productId: 999, quantity: 1 }], actor: user(userId + 1) })).toBe('FORBIDDEN');
    expect(await failure({ orderId: order.orderId, items: [{ productId: 999, quantity: 1 }], actor: admin })).toBe('REFUND_EXCEEDS_ORDER');
    expect(await failure({ orderId: order.orderId, items: [{ productId, quantity: 5 }], actor: user(userId) })).toBe('REFUND_EXCEEDS_ORDER');
    clock.advance(7 * DAY + 1);
    expect(await failure({ orderId: order.orderId, items: [{ productId, quantity: 1 }], actor: user(userId) })).toBe('ORDER_NOT_CANCELLABLE');
  });

  test('a key replays the first answer, the order as that refund left it, even after later refunds; another body is IDEMPOTENCY_KEY_REUSED', async () => {
    const { order, userId, productId } = await paidOrder();
    const cmd = { orderId: order.orderId, items: [{ productId, quantity: 1 }], actor: user(userId), idempotencyKey: 'k' };
    const first = await refundOrder(deps, cmd);
    await refundOrder(deps, { ...cmd, idempotencyKey: 'other', items: [{ productId, quantity: 3 }] });
    expect(shop.state.orders.get(order.orderId)!.status).toBe('CANCELLED');
    const again = await refundOrder(deps, cmd);
    expect(again).toEqual({ ...first, replayed: true });
    deps.events.recorded.mockClear();
    expect(await failure({ ...cmd, items: [{ productId, quantity: 2 }] })).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  test('a refused request leaves its key free: a retry with the same key is decided afresh', async () => {
    const { order, userId, productId } = await paidOrder();
    const cmd = { orderId: order.orderId, actor: user(userId), idempotencyKey: 'k' };
    expect(await failure({ ...cmd, items: [{ productId, quantity: 9 }] })).toBe('REFUND_EXCEEDS_ORDER');
    expect((await refundOrder(deps, { ...cmd, items: [{ productId, quantity: 4 }] })).order.status).toBe('CANCELLED');
  });
});
