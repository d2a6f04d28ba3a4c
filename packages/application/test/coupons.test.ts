import { beforeEach, describe, expect, test } from 'vitest';
import { createCoupon, grantCoupon, issueCoupon, listHeldCoupons, placeOrder } from '@shop/application';
import { admin, user } from './actors.ts';
import { ManualClock, MemoryShop, SequentialIds } from './fakes.ts';

const DAY = 86_400_000;
const START = new Date('2026-11-24T10:00:00.000Z');
const END = new Date('2026-11-24T12:00:00.000Z');

let shop: MemoryShop;
let clock: ManualClock;

beforeEach(() => {
  shop = new MemoryShop();
  clock = new ManualClock(START);
});

const issue = (couponId: number, userId: number) => issueCoupon({ issuance: shop.issuance, clock }, user(userId), couponId, userId);

describe('issueCoupon (first come)', () => {
  test('only inside the issue window: from its start, up to but not at its end', async () => {
    const couponId = shop.addCoupon({ issueStartsAt: START, issueEndsAt: END });
    const [early, first, last, late] = [shop.addUser(0), shop.addUser(0), shop.addUser(0), shop.addUser(0)];

    clock.set(new Date(START.getTime() - 1));
    await expect(issue(couponId, early)).rejects.toMatchObject({ code: 'COUPON_NOT_ISSUABLE' });
    clock.set(START);
    await expect(issue(couponId, first)).resolves.toMatchObject({ userId: first, status: 'AVAILABLE' });
    clock.set(new Date(END.getTime() - 1));
    await expect(issue(couponId, last)).resolves.toMatchObject({ userId: last });
    clock.set(END);
    await expect(issue(couponId, late)).rejects.toMatchObject({ code: 'COUPON_NOT_ISSUABLE' });
    expect(shop.state.coupons.get(couponId)!.issuedQuantity).toBe(2);
  });

  test('the copy expires validDays after it was issued, by the clock', async () => {
    const couponId = shop.addCoupon({ validDays: 3 });
    const userId = shop.addUser(0);
    const held = await issue(couponId, userId);
    expect(held.issuedAt).toEqual(START);
    expect(held.expiresAt).toEqual(new Date(START.getTime() + 3 * DAY));

    const statuses = async () => (await listHeldCoupons({ reads: shop.reads, clock }, admin, userId)).map((h) => h.status);
    clock.set(new Date(START.getTime() + 3 * DAY - 1));
    expect(await statuses()).toEqual(['AVAILABLE']);
    clock.set(new Date(START.getTime() + 3 * DAY));
    expect(await statuses()).toEqual(['EXPIRED']);
  });

  test('an expired copy cannot pay for an order; a used one reads USED', async () => {
    const couponId = shop.addCoupon({ validDays: 1 });
    const userId = shop.addUser(100_000);
    const p = shop.addProduct(5_000, 10);
    await issue(couponId, userId);
    const deps = { book: shop.book, reads: shop.reads, clock, ids: new SequentialIds() };

    clock.advance(DAY);
    await expect(placeOrder(deps, { actor: user(userId), userId, items: [{ productId: p, quantity: 1 }], couponId })).rejects.toMatchObject({
      code: 'INVALID_COUPON',
    });

    clock.set(START);
    const other = shop.addUser(100_000);
    await issue(couponId, other);
    const { order } = await placeOrder(deps, { actor: user(other), userId: other, items: [{ productId: p, quantity: 1 }], couponId });
    expect(await listHeldCoupons({ reads: shop.reads, clock }, admin, other)).toMatchObject([
      { couponId, status: 'USED', orderId: order.orderId },
    ]);
  });

  test('one per user, never past the total', async () => {
    const couponId = shop.addCoupon({ totalQuantity: 2 });
    const [a, b, c] = [shop.addUser(0), shop.addUser(0), shop.addUser(0)];
    await issue(couponId, a);
    await expect(issue(couponId, a)).rejects.toMatchObject({ code: 'COUPON_ALREADY_ISSUED' });
    await issue(couponId, b);
    await expect(issue(couponId, c)).rejects.toMatchObject({ code: 'COUPON_EXHAUSTED' });
    expect(shop.state.coupons.get(couponId)!.issuedQuantity).toBe(2);
  });

  test('COUPON_NOT_FOUND, then USER_NOT_FOUND', async () => {
    await expect(issue(404, 405)).rejects.toMatchObject({ code: 'COUPON_NOT_FOUND' });
    const couponId = shop.addCoupon();
    await expect(issue(couponId, 405)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(shop.state.coupons.get(couponId)!.issuedQuantity).toBe(0);
  });

  test('when the last copy goes between the unlocked read and the counting step, the loser hears why', async () => {
    const couponId = shop.addCoupon({ totalQuantity: 1 });
    const [winner, loser] = [shop.addUser(0), shop.addUser(0)];
    const peek = shop.issuance.peek;
    // Both requests read the coupon before either counts a copy.
    let reads = 0;
    let bothRead!: () => void;
    const gate = new Promise<void>((resolve) => (bothRead = resolve));
    shop.issuance.peek = async (...args) => {
      const seen = await peek(...args);
      if (++reads === 2) bothRead();
      if (reads <= 2) await gate;
      return seen;
    };
    const results = await Promise.allSettled([issue(couponId, winner), issue(couponId, loser)]);
    expect(results[0]).toMatchObject({ status: 'fulfilled' });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'COUPON_EXHAUSTED' } });
    expect(shop.state.coupons.get(couponId)!.issuedQuantity).toBe(1);
  });
});

describe('grantCoupon (operator)', () => {
  test('ignores the issue window but keeps one per user and the total', async () => {
    const couponId = shop.addCoupon({ totalQuantity: 1, issueStartsAt: END, validDays: 2 });
    const [a, b] = [shop.addUser(0), shop.addUser(0)];
    const deps = { uow: shop.uow, clock };
    const held = await grantCoupon(deps, admin, couponId, a);
    expect(held).toMatchObject({ status: 'AVAILABLE', issuedAt: START, expiresAt: new Date(START.getTime() + 2 * DAY) });
    await expect(grantCoupon(deps, admin, couponId, a)).rejects.toMatchObject({ code: 'COUPON_ALREADY_ISSUED' });
    await expect(grantCoupon(deps, admin, couponId, b)).rejects.toMatchObject({ code: 'COUPON_EXHAUSTED' });
    await expect(grantCoupon(deps, admin, 404, b)).rejects.toMatchObject({ code: 'COUPON_NOT_FOUND' });
    await expect(grantCoupon(deps, admin, couponId, 404)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
  });
});

describe('createCoupon', () => {
  test('fills the defaults and refuses impossible terms', async () => {
    const coupon = await createCoupon(shop.uow, admin, { name: 'x', discountType: 'FIXED', discountValue: 500, totalQuantity: 5 });
    expect(coupon).toMatchObject({ minOrderAmount: 0, validDays: 30, issueStartsAt: null, issueEndsAt: null, issuedQuantity: 0 });
    const before = shop.snapshot();
    await expect(
      createCoupon(shop.uow, admin, { name: 'x', discountType: 'RATE', discountValue: 101, totalQuantity: 5 }),
    ).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(
      createCoupon(shop.uow, admin, { name: 'x', discountType: 'FIXED', discountValue: 1, totalQuantity: 5, issueStartsAt: END, issueEndsAt: START }),
    ).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(shop.state).toEqual(before);
  });
});
