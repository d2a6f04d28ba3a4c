import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  decideCancellation,
  decideRefund,
  DomainError,
  guardHolds,
  orderAfterRefunds,
  paidOrder,
  refundedAmountFor,
  refundEffects,
  type Order,
  type RefundRecord,
} from '../src/index.ts';

const PLACED = new Date('2026-12-01T00:00:00.000Z');
const DAY = 86_400_000;
const at = (ms: number) => new Date(PLACED.getTime() + ms);
const order = paidOrder({
  orderId: 'o-1',
  userId: 3,
  lines: [
    { productId: 9, quantity: 2, unitPrice: 3_333, lineAmount: 6_666 },
    { productId: 4, quantity: 3, unitPrice: 1_001, lineAmount: 3_003 },
  ],
  couponId: 7,
  discountAmount: 1_450,
  createdAt: PLACED,
});

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as DomainError).code;
  }
  return null;
};

describe('decideRefund', () => {
  test('raises the refunded units and amount by the rule; PARTIALLY_REFUNDED; the coupon stays with the order', () => {
    const r = decideRefund(order, [{ productId: 4, quantity: 1 }], 'r-1', at(1_000), 7);
    const amount = Math.floor((8_219 * 1_001) / 9_669);
    expect(r.record).toEqual({ refundId: 'r-1', orderId: 'o-1', items: [{ productId: 4, quantity: 1 }], amount, createdAt: at(1_000) });
    expect(r.order).toEqual({
      ...order,
      status: 'PARTIALLY_REFUNDED',
      refundedAmount: amount,
      items: [order.items[0], { ...order.items[1], refundedQuantity: 1 }],
    });
    expect(r.releasedCoupon).toBeNull();
    expect(r.guard).toEqual({ userId: 3, balanceAtLeast: 0, stock: [], order: { status: 'PAID', refundedUnits: 0 }, coupon: null });
    expect(refundEffects(r, 'e-1')).toMatchObject({
      balanceChange: amount,
      ledgerType: 'REFUND',
      stockChanges: [{ productId: 4, change: 1 }],
      coupon: null,
      refund: r.record,
      event: { eventId: 'e-1', type: 'order.refunded', data: { orderId: 'o-1', userId: 3, refundId: 'r-1', refundedAmount: amount } },
    });
  });

  test('the last units: CANCELLED with cancelledAt, all of paidAmount refunded, the coupon released and guarded', () => {
    const first = decideRefund(order, [{ productId: 9, quantity: 2 }, { productId: 4, quantity: 1 }], 'r-1', at(1), 7);
    const last = decideRefund(first.order, [{ productId: 4, quantity: 2 }], 'r-2', at(2), 7);
    expect(last.order).toMatchObject({ status: 'CANCELLED', cancelledAt: at(2), refundedAmount: 8_219 });
    expect(first.record.amount + last.record.amount).toBe(8_219);
    expect(last.releasedCoupon).toBe(7);
    expect(last.guard).toMatchObject({ order: { status: 'PARTIALLY_REFUNDED', refundedUnits: 3 }, coupon: { couponId: 7, heldBy: 'o-1' } });
    expect(refundEffects(last, 'e').coupon).toEqual({ couponId: 7, heldBy: null });
  });

  test('refuses in the contract order: shape, then the order changeable, then the units', () => {
    const cancelled = decideCancellation(order, at(1), 7).order;
    expect(codeOf(() => decideRefund(order, [], 'r', at(1), 7))).toBe('VALIDATION_ERROR');
    expect(codeOf(() => decideRefund(order, [{ productId: 9, quantity: 0 }], 'r', at(1), 7))).toBe('VALIDATION_ERROR');
    expect(codeOf(() => decideRefund(order, [{ productId: 9, quantity: 1 }, { productId: 9, quantity: 1 }], 'r', at(1), 7))).toBe('VALIDATION_ERROR');
    expect(codeOf(() => decideRefund(cancelled, [{ productId: 5, quantity: 1 }], 'r', at(1), 7))).toBe('ORDER_NOT_CANCELLABLE');
    expect(codeOf(() => decideRefund(order, [{ productId: 5, quantity: 1 }], 'r', at(7 * DAY + 1), 7))).toBe('ORDER_NOT_CANCELLABLE');
    expect(codeOf(() => decideRefund(order, [{ productId: 5, quantity: 1 }], 'r', at(1), 7))).toBe('REFUND_EXCEEDS_ORDER');
    expect(codeOf(() => decideRefund(order, [{ productId: 9, quantity: 3 }], 'r', at(1), 7))).toBe('REFUND_EXCEEDS_ORDER');
    const part = decideRefund(order, [{ productId: 9, quantity: 2 }], 'r', at(1), 7).order;
    expect(codeOf(() => decideRefund(part, [{ productId: 9, quantity: 1 }], 'r', at(2), 7))).toBe('REFUND_EXCEEDS_ORDER');
  });

  test('its guard fails once another refund or a cancel was written on the order', () => {
    const { guard } = decideRefund(order, [{ productId: 4, quantity: 1 }], 'r', at(1), 7);
    const now = { balance: 0, products: [], order: { status: 'PAID', refundedUnits: 0 }, couponHeldBy: undefined } as const;
    expect(guardHolds(guard, now)).toBe(true);
    expect(guardHolds(guard, { ...now, order: { status: 'PARTIALLY_REFUNDED', refundedUnits: 1 } })).toBe(false);
    expect(guardHolds(guard, { ...now, order: { status: 'CANCELLED', refundedUnits: 5 } })).toBe(false);
  });

  test('a cancel after refunds gives back the rest: units, amount and coupon, in the order.cancelled of the rest', () => {
    const part = decideRefund(order, [{ productId: 9, quantity: 1 }], 'r', at(1), 7);
    const c = decideCancellation(part.order, at(2), 7);
    expect(c.refund).toBe(8_219 - part.record.amount);
    expect(c.restock).toEqual([{ productId: 9, quantity: 1 }, { productId: 4, quantity: 3 }]);
    expect(c.guard.order).toEqual({ status: 'PARTIALLY_REFUNDED', refundedUnits: 1 });
    expect(c.order).toMatchObject({ status: 'CANCELLED', refundedAmount: 8_219 });
  });
});

describe('the amount rule, by property', () => {
  const orderArb = fc
    .array(fc.record({ quantity: fc.integer({ min: 1, max: 10_000 }), unitPrice: fc.integer({ min: 0, max: 1_000_000_000 }) }), { minLength: 1, maxLength: 6 })
    .chain((lines) => {
      const total = lines.reduce((s, l) => s + l.quantity * l.unitPrice, 0);
      return fc.record({ lines: fc.constant(lines), discount: fc.integer({ min: 0, max: total }) });
    })
    .map(({ lines, discount }) =>
      paidOrder({
        orderId: 'o',
        userId: 1,
        lines: lines.map((l, i) => ({ productId: i + 1, quantity: l.quantity, unitPrice: l.unitPrice, lineAmount: l.quantity * l.unitPrice })),
        couponId: discount > 0 ? 1 : null,
        discountAmount: discount,
        createdAt: PLACED,
      }),
    );

  test('in any steps: each amount ≥ 0 and ≤ its units\' gross, refundedAmount = floor(paid × G / total), the sum exactly paidAmount, replays exact', () => {
    fc.assert(
      fc.property(orderArb, fc.infiniteStream(fc.nat()), (placed, draws) => {
        const draw = draws[Symbol.iterator]();
        let state: Order = placed;
        const records: RefundRecord[] = [];
        const states: Order[] = [];
        let gross = 0;
        for (let step = 1; state.status !== 'CANCELLED'; step++) {
          const open = state.items.filter((l) => l.refundedQuantity < l.quantity);
          const chosen = open.filter(() => draw.next().value % 2 === 0);
          const lines = (chosen.length ? chosen : [open[0]!]).map((l) => ({
            productId: l.productId,
            quantity: 1 + (draw.next().value % (l.quantity - l.refundedQuantity)),
          }));
          const r = decideRefund(state, lines, `r-${step}`, at(step), 7);
          const stepGross = lines.reduce((s, l) => s + placed.items[l.productId - 1]!.unitPrice * l.quantity, 0);
          gross += stepGross;
          expect(r.record.amount).toBeGreaterThanOrEqual(0);
          expect(r.record.amount).toBeLessThanOrEqual(stepGross);
          expect(r.order.refundedAmount).toBe(placed.totalAmount === 0 ? 0 : Number((BigInt(placed.paidAmount) * BigInt(gross)) / BigInt(placed.totalAmount)));
          records.push(r.record);
          states.push(r.order);
          state = r.order;
        }
        expect(records.reduce((s, r) => s + r.amount, 0)).toBe(placed.paidAmount);
        expect(state).toMatchObject({ refundedAmount: placed.paidAmount, cancelledAt: records.at(-1)!.createdAt });
        // A replay of any refund rebuilds the order it answered, from the final state and the records.
        records.forEach((r, i) => expect(orderAfterRefunds(state, records, r.refundId)).toEqual(states[i]));
      }),
      { numRuns: 300 },
    );
  });

  test('exact past 2^53: the product paidAmount × G is taken in BigInt', () => {
    expect(refundedAmountFor({ paidAmount: 999_999_999_999_999, totalAmount: 1_000_000_000_000_000 }, 999_999_999_999_999)).toBe(999_999_999_999_998);
    expect(refundedAmountFor({ paidAmount: 0, totalAmount: 0 }, 0)).toBe(0);
  });
});
