import { beforeEach, describe, expect, test, vi } from 'vitest';
import {
  bestSellersQuery,
  createProduct,
  getOrder,
  getProduct,
  listOrders,
  redeliverEvent,
  updateProduct,
  type OutboxStore,
  type SalesStats,
} from '@shop/application';
import { MAX_PRICE, MAX_STOCK } from '@shop/domain';
import { admin } from './actors.ts';
import { ManualClock, MemoryShop } from './fakes.ts';

let shop: MemoryShop;
beforeEach(() => {
  shop = new MemoryShop();
});

describe('products', () => {
  test('create and update within the limits; nothing changes otherwise', async () => {
    const product = await createProduct(shop.uow, admin, { name: 'tea', price: 0, stock: MAX_STOCK });
    expect(await updateProduct(shop.uow, admin, product.productId, { price: MAX_PRICE })).toMatchObject({
      price: MAX_PRICE,
      stock: MAX_STOCK,
    });
    const before = shop.snapshot();
    for (const bad of [{ price: -1 }, { price: MAX_PRICE + 1 }, { price: 1.5 }, { stock: -1 }, { stock: MAX_STOCK + 1 }]) {
      await expect(updateProduct(shop.uow, admin, product.productId, bad)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
      await expect(createProduct(shop.uow, admin, { name: 'x', price: 1, stock: 1, ...bad })).rejects.toMatchObject({
        code: 'VALIDATION_ERROR',
      });
    }
    expect(shop.state).toEqual(before);
    await expect(updateProduct(shop.uow, admin, 404, { stock: 1 })).rejects.toMatchObject({ code: 'PRODUCT_NOT_FOUND' });
    await expect(getProduct(shop.reads, 404)).rejects.toMatchObject({ code: 'PRODUCT_NOT_FOUND' });
  });
});

describe('orders', () => {
  test('unknown order and unknown user are told apart', async () => {
    await expect(getOrder(shop.reads, admin, 'nope')).rejects.toMatchObject({ code: 'ORDER_NOT_FOUND' });
    await expect(listOrders(shop.reads, admin, 404, 20, null)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    const userId = shop.addUser(0);
    expect(await listOrders(shop.reads, admin, userId, 20, null)).toEqual({ items: [], nextCursor: null });
  });
});

describe('redeliverEvent', () => {
  test('wakes the relay only when the event exists', async () => {
    const wakeRelay = vi.fn();
    const record = { eventId: 'e-1' };
    const outbox = { redeliver: async (id: string) => (id === 'e-1' ? record : null) } as unknown as OutboxStore;
    await expect(redeliverEvent({ outbox, wakeRelay }, admin, 'e-2')).rejects.toMatchObject({ code: 'EVENT_NOT_FOUND' });
    expect(wakeRelay).not.toHaveBeenCalled();
    expect(await redeliverEvent({ outbox, wakeRelay }, admin, 'e-1')).toBe(record);
    expect(wakeRelay).toHaveBeenCalledTimes(1);
  });
});

describe('bestSellersQuery', () => {
  const NOW = new Date('2026-11-24T09:00:00.000Z');
  let clock: ManualClock;
  let calls: Date[];
  let fail: boolean;
  const sales: SalesStats = {
    top: async (from) => {
      calls.push(from);
      if (fail) throw new Error('database down');
      return [
        { productId: 2, name: 'b', price: 10, soldQuantity: 9 },
        { productId: 1, name: 'a', price: 10, soldQuantity: 9 },
      ];
    },
  };
  beforeEach(() => {
    clock = new ManualClock(NOW);
    calls = [];
    fail = false;
  });

  test('ranks the rows in the order the store gives them, over the last `days` days', async () => {
    const top = bestSellersQuery({ sales, clock }, 1_000);
    const answer = await top(3, 5);
    expect(answer.from).toEqual(new Date(NOW.getTime() - 3 * 86_400_000));
    expect(answer.to).toEqual(NOW);
    expect(answer.items.map((i) => [i.rank, i.productId])).toEqual([
      [1, 2],
      [2, 1],
    ]);
  });

  test('a burst of readers within the TTL costs one query; after it, a fresh one', async () => {
    const top = bestSellersQuery({ sales, clock }, 1_000);
    await Promise.all([top(3, 5), top(3, 5), top(3, 5)]);
    clock.advance(999);
    await top(3, 5);
    expect(calls).toHaveLength(1);
    await top(7, 5); // another window is another entry
    expect(calls).toHaveLength(2);
    clock.advance(1);
    await top(3, 5);
    expect(calls).toHaveLength(3);
  });

  test('a failure is not cached', async () => {
    const top = bestSellersQuery({ sales, clock }, 1_000);
    fail = true;
    await expect(top(3, 5)).rejects.toThrow('database down');
    fail = false;
    await expect(top(3, 5)).resolves.toMatchObject({ items: expect.any(Array) });
    expect(calls).toHaveLength(2);
  });
});
