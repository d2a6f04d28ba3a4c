import { beforeEach, describe, expect, test, vi, type Mock } from 'vitest';
import { MAX_DECISIONS, RetryLaterError, placeOrder, type PlaceOrderCommand, type PlaceOrderDeps, type PlaceOrderResult } from '@shop/application';
import { user } from './actors.ts';
import { ManualClock, MemoryShop, SequentialIds } from './fakes.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-11-24T09:00:00.000Z');

let shop: MemoryShop;
let clock: ManualClock;
let deps: PlaceOrderDeps & { events: { recorded: Mock<() => void> } };

function arrange() {
  shop = new MemoryShop();
  clock = new ManualClock(NOW);
  deps = {
    book: shop.book,
    reads: shop.reads,
    clock,
    ids: new SequentialIds(),
    events: { recorded: vi.fn<() => void>() },
  };
}

const heldFrom = (userId: number, couponId: number, issuedAt = new Date(NOW.getTime() - DAY), days = 7) =>
  shop.give(couponId, userId, issuedAt, new Date(issuedAt.getTime() + days * DAY));

/** An order placed by its buyer: who may place one is authorization.test.ts's subject. */
type Purchase = Omit<PlaceOrderCommand, 'actor'>;
const place = (cmd: Purchase) => placeOrder(deps, { actor: user(cmd.userId), ...cmd });

/** Runs the command expecting a failure; returns its code after checking nothing changed. */
async function failure(cmd: Purchase): Promise<string> {
  const before = shop.snapshot();
  const error = await place(cmd).then(
    () => null,
    (e: { code?: string }) => e,
  );
  expect(error, 'the request should have failed').not.toBeNull();
  expect(shop.state).toEqual(before);
  expect(deps.events.recorded).not.toHaveBeenCalled();
  return error!.code ?? String(error);
}

describe('placeOrder', () => {
  beforeEach(() => arrange());

  test('takes stock, uses the coupon, pays, and records the order and its event together', async () => {
    const userId = shop.addUser(10_000);
    const p1 = shop.addProduct(999, 5);
    const p2 = shop.addProduct(1_001, 5);
    const couponId = shop.addCoupon({ discountType: 'RATE', discountValue: 15, minOrderAmount: 3_000 });
    heldFrom(userId, couponId);

    const { order, replayed } = await place({
      userId,
      items: [
        { productId: p2, quantity: 2 },
        { productId: p1, quantity: 1 },
      ],
      couponId,
    });

    expect(replayed).toBe(false);
    expect(order).toMatchObject({
      userId,
      status: 'PAID',
      items: [
        { productId: p2, quantity: 2, unitPrice: 1_001, lineAmount: 2_002 },
        { productId: p1, quantity: 1, unitPrice: 999, lineAmount: 999 },
      ],
      totalAmount: 3_001,
      discountAmount: 450,
      paidAmount: 2_551,
      couponId,
      createdAt: NOW,
    });
    expect(shop.state.products.get(p1)!.stock).toBe(4);
    expect(shop.state.products.get(p2)!.stock).toBe(3);
    expect(shop.state.users.get(userId)!.balance).toBe(10_000 - 2_551);
    expect(shop.state.held.get(`${userId}:${couponId}`)).toMatchObject({ usedAt: NOW, orderId: order.orderId });
    expect(shop.state.ledger).toEqual([
      { userId, type: 'PAYMENT', amount: -2_551, balanceAfter: 7_449, orderId: order.orderId, createdAt: NOW },
    ]);
    expect(shop.state.outbox).toHaveLength(1);
    expect(shop.state.outbox[0]).toMatchObject({ type: 'order.paid', data: { orderId: order.orderId, paidAmount: 2_551 } });
    expect(shop.state.outbox[0]!.eventId).not.toBe(order.orderId);
    expect(deps.events.recorded).toHaveBeenCalledTimes(1);
  });

  test('may spend the balance to exactly zero and take the last unit', async () => {
    const userId = shop.addUser(3_000);
    const p = shop.addProduct(1_000, 3);
    await place({ userId, items: [{ productId: p, quantity: 3 }] });
    expect(shop.state.users.get(userId)!.balance).toBe(0);
    expect(shop.state.products.get(p)!.stock).toBe(0);
  });

  test('a FIXED coupon worth more than the order makes it free, not negative', async () => {
    const userId = shop.addUser(0);
    const p = shop.addProduct(500, 1);
    const couponId = shop.addCoupon({ discountType: 'FIXED', discountValue: 3_000 });
    heldFrom(userId, couponId);
    const { order } = await place({ userId, items: [{ productId: p, quantity: 1 }], couponId });
    expect(order).toMatchObject({ totalAmount: 500, discountAmount: 500, paidAmount: 0 });
  });

  describe('errors come in the contract order and leave nothing behind', () => {
    // Everything wrong at once, then fixed one thing at a time: each step shows the next code.
    let userId: number;
    let scarce: number;
    let plenty: number;
    let couponId: number;
    beforeEach(() => {
      userId = shop.addUser(100);
      scarce = shop.addProduct(1_000, 1);
      plenty = shop.addProduct(1_000, 100);
      couponId = shop.addCoupon({ minOrderAmount: 50_000 });
      heldFrom(userId, couponId);
    });

    test('VALIDATION_ERROR before anything is looked up', async () => {
      expect(await failure({ userId: 999_999, items: [], couponId })).toBe('VALIDATION_ERROR');
      const dup = [
        { productId: 999_999, quantity: 1 },
        { productId: 999_999, quantity: 1 },
      ];
      expect(await failure({ userId: 999_999, items: dup })).toBe('VALIDATION_ERROR');
    });

    test('USER_NOT_FOUND before PRODUCT_NOT_FOUND', async () => {
      expect(await failure({ userId: 999_999, items: [{ productId: 999_998, quantity: 1 }], couponId })).toBe(
        'USER_NOT_FOUND',
      );
    });

    test('PRODUCT_NOT_FOUND before OUT_OF_STOCK, even when the short item is listed first', async () => {
      const items = [
        { productId: scarce, quantity: 2 },
        { productId: 999_998, quantity: 1 },
      ];
      expect(await failure({ userId, items, couponId })).toBe('PRODUCT_NOT_FOUND');
    });

    test('OUT_OF_STOCK before INVALID_COUPON', async () => {
      expect(await failure({ userId, items: [{ productId: scarce, quantity: 2 }], couponId })).toBe('OUT_OF_STOCK');
    });

    test('INVALID_COUPON before INSUFFICIENT_BALANCE', async () => {
      expect(await failure({ userId, items: [{ productId: plenty, quantity: 2 }], couponId })).toBe('INVALID_COUPON');
    });

    test('INSUFFICIENT_BALANCE last', async () => {
      expect(await failure({ userId, items: [{ productId: plenty, quantity: 50 }], couponId })).toBe(
        'INSUFFICIENT_BALANCE',
      );
    });
  });

  test.each([
    ['not held', (_u: number, _c: number) => undefined],
    ['expired', (u: number, c: number) => heldFrom(u, c, new Date(NOW.getTime() - 8 * DAY), 7)],
    ['not valid yet', (u: number, c: number) => heldFrom(u, c, new Date(NOW.getTime() + 1), 7)],
  ])('a coupon %s is INVALID_COUPON', async (_why, arrange) => {
    const userId = shop.addUser(100_000);
    const p = shop.addProduct(1_000, 10);
    const couponId = shop.addCoupon();
    arrange(userId, couponId);
    expect(await failure({ userId, items: [{ productId: p, quantity: 1 }], couponId })).toBe('INVALID_COUPON');
  });

  test('a coupon works once', async () => {
    const userId = shop.addUser(100_000);
    const p = shop.addProduct(5_000, 10);
    const couponId = shop.addCoupon();
    heldFrom(userId, couponId);
    await place({ userId, items: [{ productId: p, quantity: 1 }], couponId });
    deps.events.recorded.mockClear();
    expect(await failure({ userId, items: [{ productId: p, quantity: 1 }], couponId })).toBe('INVALID_COUPON');
  });
});

describe('placeOrder with an Idempotency-Key', () => {
  let userId: number;
  let p: number;
  const cmd = () => ({ userId, items: [{ productId: p, quantity: 1 }], idempotencyKey: 'key-1' });
  beforeEach(() => {
    arrange();
    userId = shop.addUser(10_000);
    p = shop.addProduct(1_000, 10);
  });

  test('a retry replays the first order and pays nothing more', async () => {
    const first = await place(cmd());
    // The snapshot brings the order its key names: a replay reads nothing more.
    const read = vi.spyOn(deps.reads, 'order');
    const again = await place(cmd());
    expect(read).not.toHaveBeenCalled();
    expect(again).toEqual({ order: first.order, replayed: true });
    expect(shop.state.orders.size).toBe(1);
    expect(shop.state.outbox).toHaveLength(1);
    expect(shop.state.users.get(userId)!.balance).toBe(9_000);
    expect(deps.events.recorded).toHaveBeenCalledTimes(1);
  });

  test("a first request's snapshot reads no key; a replay's reads it once its write finds the key completed", async () => {
    const snapshot = vi.spyOn(deps.book, 'snapshot');
    const write = vi.spyOn(deps.book, 'write');
    await place(cmd());
    expect(snapshot.mock.calls.map((c) => c[3])).toEqual([null]);
    snapshot.mockClear();
    await place(cmd());
    expect(snapshot.mock.calls.map((c) => c[3])).toEqual([null, 'key-1']);
    expect(await Promise.all(write.mock.results.map((r) => r.value))).toEqual(['written', 'key_completed']);
  });

  test('the key is stored with the order, in the same write', async () => {
    const { order } = await place(cmd());
    expect(shop.state.idempotency.get(`${userId}:key-1`)).toMatchObject({ result: { orderId: order.orderId } });
  });

  test('a completed key replays whatever the state is now, without writing', async () => {
    const first = await place(cmd());
    shop.state.products.set(p, { ...shop.state.products.get(p)!, stock: 0, price: 9_999 });
    shop.state.users.get(userId)!.balance = 0;
    const before = shop.snapshot();
    const again = await place(cmd());
    expect(again).toEqual({ order: first.order, replayed: true });
    expect(shop.state).toEqual(before);
    expect(shop.guardFailures).toBe(0);
  });

  test('a refused request leaves its key free: a retry is decided afresh, with any body', async () => {
    expect(await failure({ ...cmd(), items: [{ productId: p, quantity: 11 }] })).toBe('OUT_OF_STOCK');
    expect(shop.state.idempotency.size).toBe(0);
    // Another body under the same key: not IDEMPOTENCY_KEY_REUSED, since nothing was stored.
    const { order, replayed } = await place({ ...cmd(), items: [{ productId: p, quantity: 10 }] });
    expect(replayed).toBe(false);
    expect(order.items[0]!.quantity).toBe(10);
    // The key is completed now, by that second request.
    expect(await place({ ...cmd(), items: [{ productId: p, quantity: 10 }] })).toEqual({ order, replayed: true });
  });

  test('the same key with a different body is IDEMPOTENCY_KEY_REUSED', async () => {
    await place(cmd());
    deps.events.recorded.mockClear();
    expect(await failure({ ...cmd(), items: [{ productId: p, quantity: 2 }] })).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  test('IDEMPOTENCY_KEY_REUSED comes before any business error', async () => {
    await place(cmd());
    deps.events.recorded.mockClear();
    expect(await failure({ ...cmd(), items: [{ productId: 999_999, quantity: 1 }] })).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  test('keys belong to a user: another user may use the same key', async () => {
    const other = shop.addUser(10_000);
    await place(cmd());
    const theirs = await place({ ...cmd(), userId: other });
    expect(theirs.replayed).toBe(false);
    expect(shop.state.orders.size).toBe(2);
  });

  /** Starts the first request and holds it in its write, its key claimed, until `release()`. */
  async function firstHeldInItsWrite() {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let writing = false;
    shop.beforeGuardedWrite = () => {
      writing = true;
      shop.beforeGuardedWrite = async () => undefined;
      return held;
    };
    const first = place(cmd());
    await vi.waitFor(() => expect(writing).toBe(true));
    return { first, release };
  }

  test('IDEMPOTENCY_KEY_IN_USE while the first request is still being written', async () => {
    const { first, release } = await firstHeldInItsWrite();

    await expect(place(cmd())).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
    release();
    const placed = await first;
    expect((await place(cmd())).order).toEqual(placed.order);
    expect(shop.state.orders.size).toBe(1);
  });

  test('IDEMPOTENCY_KEY_IN_USE for a duplicate in flight even when its own snapshot would refuse it', async () => {
    const { first, release } = await firstHeldInItsWrite();
    // As far as a new snapshot can tell the balance is gone; the first write will still succeed.
    shop.state.users.get(userId)!.balance = 0;
    await expect(place(cmd())).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
    shop.state.users.get(userId)!.balance = 10_000;
    release();
    await first;
    expect(shop.state.orders.size).toBe(1);
  });

  /**
   * Places the command while another request with the same key runs to completion between this
   * one's snapshot and its decision (after `meanwhile` changes the state); both results.
   */
  async function lateBehindAFirstThatCompletes(meanwhile: () => void = () => undefined) {
    let first: Promise<PlaceOrderResult> | undefined;
    shop.afterSnapshot = async () => {
      shop.afterSnapshot = async () => undefined;
      meanwhile();
      first = place(cmd());
      await first;
    };
    const late = await place(cmd());
    return { late, first: await first! };
  }

  test('a key completed after a snapshot that refuses: the refusal looks at the key again and replays the first', async () => {
    // This request's snapshot sees no balance; meanwhile the user is charged and the first completes.
    shop.state.users.get(userId)!.balance = 0;
    const { late, first } = await lateBehindAFirstThatCompletes(() => (shop.state.users.get(userId)!.balance = 10_000));
    expect(late.replayed).toBe(true);
    expect(late.order).toEqual(first.order);
    expect(shop.state.orders.size).toBe(1);
    expect(shop.keyLooks).toBe(1);
  });

  test('only a refused keyed request looks at its key apart from the snapshot', async () => {
    await place(cmd());
    await place(cmd());
    expect(shop.keyLooks).toBe(0);
    deps.events.recorded.mockClear();
    expect(await failure({ ...cmd(), idempotencyKey: 'key-2', items: [{ productId: p, quantity: 99 }] })).toBe('OUT_OF_STOCK');
    expect(shop.keyLooks).toBe(1);
    expect(await failure({ ...cmd(), idempotencyKey: undefined, items: [{ productId: p, quantity: 99 }] })).toBe('OUT_OF_STOCK');
    expect(shop.keyLooks).toBe(1);
  });

  test('a key completed between snapshot and write: the late one replays the first, and pays nothing', async () => {
    const { late, first } = await lateBehindAFirstThatCompletes();
    expect(late.replayed).toBe(true);
    expect(late.order).toEqual(first.order);
    expect(shop.state.orders.size).toBe(1);
    expect(shop.state.users.get(userId)!.balance).toBe(9_000);
  });

  test('a failed request stores no key, so a retry after fixing the cause goes through', async () => {
    shop.state.users.get(userId)!.balance = 500;
    expect(await failure(cmd())).toBe('INSUFFICIENT_BALANCE');
    expect(shop.state.idempotency.size).toBe(0);
    shop.state.users.get(userId)!.balance = 5_000;
    const { replayed } = await place(cmd());
    expect(replayed).toBe(false);
    expect(shop.state.users.get(userId)!.balance).toBe(4_000);
  });
});

describe('placeOrder when the rows change between snapshot and write', () => {
  beforeEach(() => arrange());

  test('takes no row lock at all', async () => {
    const userId = shop.addUser(10_000);
    const p = shop.addProduct(1_000, 5);
    const { order } = await place({ userId, items: [{ productId: p, quantity: 2 }] });
    expect(order.paidAmount).toBe(2_000);
    expect(shop.locks).toEqual([]);
    expect(shop.state.products.get(p)!.stock).toBe(3);
  });

  test('a sold-out product answers OUT_OF_STOCK from the snapshot, without writing', async () => {
    const userId = shop.addUser(10_000);
    const p = shop.addProduct(1_000, 0);
    expect(await failure({ userId, items: [{ productId: p, quantity: 1 }] })).toBe('OUT_OF_STOCK');
    expect(shop.guardFailures).toBe(0);
  });

  test('when the last unit goes in between, a fresh snapshot gives the exact answer', async () => {
    const userId = shop.addUser(10_000);
    const p = shop.addProduct(1_000, 1);
    shop.beforeGuardedWrite = async () => {
      // The competing buyer takes the last unit now.
      shop.state.products.set(p, { ...shop.state.products.get(p)!, stock: 0 });
    };
    await expect(place({ userId, items: [{ productId: p, quantity: 1 }] })).rejects.toMatchObject({
      code: 'OUT_OF_STOCK',
    });
    expect(shop.guardFailures).toBe(1);
    expect(shop.state.orders.size).toBe(0);
    expect(shop.state.users.get(userId)!.balance).toBe(10_000);
  });

  test('a price changed in between is charged at the new price, never the old one', async () => {
    const userId = shop.addUser(10_000);
    const p = shop.addProduct(1_000, 5);
    shop.beforeGuardedWrite = async () => {
      shop.state.products.set(p, { ...shop.state.products.get(p)!, price: 1_500 });
      shop.beforeGuardedWrite = async () => undefined;
    };
    const { order } = await place({ userId, items: [{ productId: p, quantity: 1 }] });
    expect(shop.guardFailures).toBe(1);
    expect(order.items[0]).toMatchObject({ unitPrice: 1_500, lineAmount: 1_500 });
    expect(shop.state.users.get(userId)!.balance).toBe(8_500);
  });

  test('stock that went down but still covers the order does not make it stale', async () => {
    const userId = shop.addUser(10_000);
    const p = shop.addProduct(1_000, 5);
    shop.beforeGuardedWrite = async () => {
      shop.state.products.set(p, { ...shop.state.products.get(p)!, stock: 2 });
    };
    await place({ userId, items: [{ productId: p, quantity: 2 }] });
    expect(shop.guardFailures).toBe(0);
    expect(shop.state.products.get(p)!.stock).toBe(0);
  });

  test('a coupon used by a concurrent order in between is INVALID_COUPON, and nothing is charged', async () => {
    const userId = shop.addUser(10_000);
    const p = shop.addProduct(5_000, 5);
    const couponId = shop.addCoupon();
    heldFrom(userId, couponId);
    shop.beforeGuardedWrite = async () => {
      const key = `${userId}:${couponId}`;
      shop.state.held.set(key, { ...shop.state.held.get(key)!, usedAt: NOW, orderId: 'elsewhere' });
    };
    await expect(place({ userId, items: [{ productId: p, quantity: 1 }], couponId })).rejects.toMatchObject({
      code: 'INVALID_COUPON',
    });
    expect(shop.state.users.get(userId)!.balance).toBe(10_000);
    expect(shop.state.products.get(p)!.stock).toBe(5);
  });

  test('rows rewritten under every attempt: a 503-style RetryLaterError after a bounded number, nothing written', async () => {
    const userId = shop.addUser(1_000_000);
    const p = shop.addProduct(1_000, 5);
    shop.beforeGuardedWrite = async () => {
      const product = shop.state.products.get(p)!;
      shop.state.products.set(p, { ...product, price: product.price + 1 });
    };
    const error = await place({ userId, items: [{ productId: p, quantity: 1 }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryLaterError);
    expect(shop.guardFailures).toBe(MAX_DECISIONS);
    expect(shop.state.orders.size).toBe(0);
    expect(shop.state.users.get(userId)!.balance).toBe(1_000_000);
  });
});
