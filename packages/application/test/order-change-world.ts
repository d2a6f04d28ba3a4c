import { vi, type Mock } from 'vitest';
import { placeOrder, type OrderChangeDeps } from '@shop/application';
import { user } from './actors.ts';
import { ManualClock, MemoryShop, SequentialIds } from './fakes.ts';

export const DAY = 86_400_000;
export const NOW = new Date('2026-11-24T09:00:00.000Z');

/** A shop in memory for the tests of changes to an order (cancel, refund), at NOW, cancellable for 7 days. */
export function orderChangeWorld() {
  const shop = new MemoryShop();
  const clock = new ManualClock(NOW);
  const deps: OrderChangeDeps & { events: { recorded: Mock<() => void> } } = {
    book: shop.book,
    reads: shop.reads,
    clock,
    ids: new SequentialIds(),
    cancelDays: 7,
    events: { recorded: vi.fn<() => void>() },
  };
  /**
   * A paid order of `quantity` units at 1,000 with a 300 coupon, from a balance of 10,000 and a
   * stock of 5; the events it recorded are forgotten.
   */
  const paidOrder = async (quantity: number) => {
    const userId = shop.addUser(10_000);
    const productId = shop.addProduct(1_000, 5);
    const couponId = shop.addCoupon({ discountType: 'FIXED', discountValue: 300 });
    shop.give(couponId, userId, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + 7 * DAY));
    const { order } = await placeOrder(deps, { actor: user(userId), userId, items: [{ productId, quantity }], couponId });
    deps.events.recorded.mockClear();
    return { order, userId, productId, couponId };
  };
  return { shop, clock, deps, paidOrder };
}
