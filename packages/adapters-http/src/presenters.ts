import type { Coupon, Order, RefundRecord } from '@shop/domain';
import type { HeldCouponView, LedgerEntry, Page } from '@shop/application';

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export const presentOrder = (o: Order) => ({
  orderId: o.orderId,
  userId: o.userId,
  status: o.status,
  items: o.items.map(({ productId, quantity, unitPrice, lineAmount, refundedQuantity }) => ({
    productId,
    quantity,
    unitPrice,
    lineAmount,
    refundedQuantity,
  })),
  totalAmount: o.totalAmount,
  discountAmount: o.discountAmount,
  paidAmount: o.paidAmount,
  couponId: o.couponId,
  createdAt: o.createdAt.toISOString(),
  cancelledAt: o.cancelledAt === null ? null : o.cancelledAt.toISOString(),
  refundedAmount: o.refundedAmount,
});

export const presentRefund = (r: RefundRecord) => ({
  refundId: r.refundId,
  orderId: r.orderId,
  items: r.items.map(({ productId, quantity }) => ({ productId, quantity })),
  amount: r.amount,
  createdAt: r.createdAt.toISOString(),
});

export const presentOrderPage = (p: Page<Order>) => ({ items: p.items.map(presentOrder), nextCursor: p.nextCursor });

export const presentLedgerPage = (p: Page<LedgerEntry>) => ({
  items: p.items.map((e) => ({ ...e, createdAt: e.createdAt.toISOString() })),
  nextCursor: p.nextCursor,
});

export const presentHeldCoupon = (h: HeldCouponView) => ({
  couponId: h.couponId,
  userId: h.userId,
  name: h.name,
  discountType: h.discountType,
  discountValue: h.discountValue,
  minOrderAmount: h.minOrderAmount,
  status: h.status,
  issuedAt: h.issuedAt.toISOString(),
  usedAt: iso(h.usedAt),
  expiresAt: h.expiresAt.toISOString(),
  orderId: h.orderId,
});

export const presentCoupon = (c: Coupon) => ({
  couponId: c.couponId,
  name: c.name,
  discountType: c.discountType,
  discountValue: c.discountValue,
  totalQuantity: c.totalQuantity,
  issuedQuantity: c.issuedQuantity,
  minOrderAmount: c.minOrderAmount,
  issueStartsAt: iso(c.issueStartsAt),
  issueEndsAt: iso(c.issueEndsAt),
  validDays: c.validDays,
});
