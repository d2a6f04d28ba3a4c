import { beforeEach, describe, expect, test } from 'vitest';
import { cancelOrder, placeOrder, RecentOrderKeys, type PlaceOrderDeps } from '@shop/application';
import { user } from './actors.ts';
import { ManualClock, MemoryShop, SequentialIds } from './fakes.ts';

const NOW = new Date('2026-11-24T09:00:00.000Z');
const KEEP_MS = 10 * 60_000;
/** A replay the store answers: a snapshot without the key, a write told the key is completed, a snapshot with it (ADR 0010). */
const STORE_REPLAY_SNAPSHOTS = 2;

let shop: MemoryShop;
let clock: ManualClock;
let recentKeys: RecentOrderKeys;
let reads: { snapshots: number; keyLooks: number; orders: number };
let deps: PlaceOrderDeps;
let userId: number;
let p: number;

/** Each instance its own memory over the same store: `other` stands for another API instance. */
function instance(keys: RecentOrderKeys): PlaceOrderDeps {
  return {
    book: {
      ...shop.book,
      snapshot: (...a) => (reads.snapshots++, shop.book.snapshot(...a)),
      keyState: (...a) => (reads.keyLooks++, shop.book.keyState(...a)),
    },
    reads: { ...shop.reads, order: (id) => (reads.orders++, shop.reads.order(id)) },
    clock,
    ids: new SequentialIds(),
    recentKeys: keys,
  };
}

beforeEach(() => {
  shop = new MemoryShop();
  clock = new ManualClock(NOW);
  recentKeys = new RecentOrderKeys(clock, { maxEntries: 3, keepMs: KEEP_MS });
  reads = { snapshots: 0, keyLooks: 0, orders: 0 };
  deps = instance(recentKeys);
  userId = shop.addUser(10_000);
  p = shop.addProduct(1_000, 10);
});

const cmd = (key = 'key-1', quantity = 1) => ({ actor: user(userId), userId, items: [{ productId: p, quantity }], idempotencyKey: key });
const readsNow = () => ({ ...reads });

describe('keyed orders this instance answered a moment ago', () => {
  test('a retry is the first answer, read from nowhere, and changes nothing', async () => {
    const first = await placeOrder(deps, cmd());
    const [before, state] = [readsNow(), shop.snapshot()];
    expect(await placeOrder(deps, cmd())).toEqual({ order: first.order, replayed: true });
    expect(reads).toEqual(before);
    expect(shop.state).toEqual(state);
  });

  test('another body under the key is IDEMPOTENCY_KEY_REUSED, as the store would answer', async () => {
    await placeOrder(deps, cmd());
    const before = readsNow();
    await expect(placeOrder(deps, cmd('key-1', 2))).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(reads).toEqual(before);
    // The store's answer, without the memory: the same.
    await expect(placeOrder(instance(new RecentOrderKeys(clock, { maxEntries: 3, keepMs: KEEP_MS })), cmd('key-1', 2))).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
  });

  test('past keepMs the store answers again, with the same first answer', async () => {
    const first = await placeOrder(deps, cmd());
    clock.advance(KEEP_MS);
    const before = readsNow();
    expect(await placeOrder(deps, cmd())).toEqual({ order: first.order, replayed: true });
    expect(reads.snapshots).toBe(before.snapshots + STORE_REPLAY_SNAPSHOTS);
  });

  test("another instance's key is read from the store once, then remembered", async () => {
    const first = await placeOrder(instance(new RecentOrderKeys(clock, { maxEntries: 3, keepMs: KEEP_MS })), cmd());
    const before = readsNow();
    expect(await placeOrder(deps, cmd())).toEqual({ order: first.order, replayed: true });
    expect(reads.snapshots).toBe(before.snapshots + STORE_REPLAY_SNAPSHOTS);
    const after = readsNow();
    expect(await placeOrder(deps, cmd())).toEqual({ order: first.order, replayed: true });
    expect(reads).toEqual(after);
  });

  test("a key learned from the store late in its life is kept no longer than a day from its order's creation", async () => {
    await placeOrder(instance(new RecentOrderKeys(clock, { maxEntries: 3, keepMs: KEEP_MS })), cmd());
    clock.advance(24 * 3_600_000 - 5 * 60_000);
    await placeOrder(deps, cmd());
    expect(recentKeys.get(userId, 'key-1')).not.toBeNull();
    clock.advance(5 * 60_000);
    expect(recentKeys.get(userId, 'key-1')).toBeNull();
    // Older than a day when learned: not kept at all, so each retry reads the store.
    await placeOrder(deps, cmd());
    expect(recentKeys.get(userId, 'key-1')).toBeNull();
    const before = readsNow();
    await placeOrder(deps, cmd());
    expect(reads.snapshots).toBe(before.snapshots + STORE_REPLAY_SNAPSHOTS);
  });

  test('a refused order leaves nothing remembered: its retry is decided afresh', async () => {
    await expect(placeOrder(deps, cmd('key-1', 11))).rejects.toMatchObject({ code: 'OUT_OF_STOCK' });
    expect(recentKeys.size).toBe(0);
    const { replayed } = await placeOrder(deps, cmd('key-1', 1));
    expect(replayed).toBe(false);
  });

  test('at most maxEntries: the oldest go first', async () => {
    for (const key of ['a', 'b', 'c', 'd']) await placeOrder(deps, cmd(key));
    expect(recentKeys.size).toBeLessThanOrEqual(3);
    expect(recentKeys.get(userId, 'a')).toBeNull();
    expect(recentKeys.get(userId, 'c')).not.toBeNull();
    expect(recentKeys.get(userId, 'd')).not.toBeNull();
    const before = readsNow();
    await placeOrder(deps, cmd('a'));
    expect(reads.snapshots).toBe(before.snapshots + STORE_REPLAY_SNAPSHOTS);
  });

  test('the first answer and every replay from memory are one object, as placed, even once the order is cancelled', async () => {
    const first = await placeOrder(deps, cmd());
    const again = await placeOrder(deps, cmd());
    expect(again.order).toBe(first.order);
    // Learned from the store after a cancel: the first answer, once made, and then that same object.
    const other = instance(new RecentOrderKeys(clock, { maxEntries: 3, keepMs: KEEP_MS }));
    await cancelOrder({ ...deps, cancelDays: 7 }, { actor: user(userId), orderId: first.order.orderId });
    expect(shop.state.orders.get(first.order.orderId)?.status).toBe('CANCELLED');
    const fromStore = await placeOrder(other, cmd());
    expect(fromStore.order).toEqual(first.order);
    expect((await placeOrder(other, cmd())).order).toBe(fromStore.order);
  });

  test('keys are per user', async () => {
    await placeOrder(deps, cmd());
    expect(recentKeys.get(userId + 1, 'key-1')).toBeNull();
  });
});
