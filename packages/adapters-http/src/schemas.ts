import { z } from 'zod';
import {
  MAX_BALANCE,
  MAX_CHARGE,
  MAX_LINE_QUANTITY,
  MAX_ORDER_LINES,
  MAX_REFUND_LINES,
  MAX_PRICE,
  MAX_STOCK,
  MIN_CHARGE,
} from '@shop/domain';

/**
 * One set of schemas validates every input and generates /openapi.json. Bodies are strict:
 * an unknown field is refused rather than ignored, so a typo such as `coupon_id` cannot
 * silently place an order at full price.
 */

const id = z.int().min(1).describe('a positive integer id');
/** Path and query values arrive as text; only plain decimal digits are accepted. */
const idParam = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.int().min(1));
const limitParam = (max: number, fallback: number) =>
  z
    .string()
    .regex(/^[0-9]{1,4}$/, 'must be an integer')
    .transform(Number)
    .pipe(z.int().min(1).max(max))
    .default(fallback)
    .describe(`1 to ${max}, default ${fallback}`);
const cursorParam = z.string().min(1).max(512).optional().describe('the nextCursor of the previous page');
const won = (max: number) => z.int().min(0).max(max);
const timestamp = z.iso.datetime({ offset: true }).describe('RFC 3339');

export const UserIdParams = z.strictObject({ userId: idParam });
export const ProductIdParams = z.strictObject({ productId: idParam });
export const CouponIdParams = z.strictObject({ couponId: idParam });
/** An orderId is opaque: any value names an order or none (404), never a 400 for its shape. */
export const OrderIdParams = z.strictObject({ orderId: z.string().describe('opaque order id, as returned when the order was placed') });
/** The same for an event id. */
export const EventIdParams = z.strictObject({ eventId: z.string().describe('opaque event id') });
export const PageQuery = z.strictObject({ limit: limitParam(100, 20), cursor: cursorParam });

export const IdempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 visible ASCII characters')
    .optional()
    .describe('repeat a request safely: the same key returns the first response'),
});

export const PlaceOrderBody = z.strictObject({
  userId: id,
  items: z
    .array(z.strictObject({ productId: id, quantity: z.int().min(1).max(MAX_LINE_QUANTITY) }))
    .min(1)
    .max(MAX_ORDER_LINES)
    .refine((items) => new Set(items.map((i) => i.productId)).size === items.length, 'a productId may appear once'),
  couponId: id.optional(),
});

export const RefundBody = z.strictObject({
  items: z
    .array(z.strictObject({ productId: id, quantity: z.int().min(1).max(Number.MAX_SAFE_INTEGER) }))
    .min(1)
    .max(MAX_REFUND_LINES)
    .refine((items) => new Set(items.map((i) => i.productId)).size === items.length, 'a productId may appear once')
    .describe("the units to give back; more than the order has left is 400 REFUND_EXCEEDS_ORDER"),
});

/**
 * The body of an action that takes none (cancel, redeliver): absent or `{}`. A field is refused
 * (400), never ignored: `{"items":[…]}` on cancel must not cancel the whole order for a client
 * that believes in partial cancellation.
 */
export const NoBody = z.strictObject({}).nullish().describe('no fields; may be omitted');
export const ChargeBody = z.strictObject({ amount: z.int().min(MIN_CHARGE).max(MAX_CHARGE) });

/**
 * A display name: trimmed, no control characters. PostgreSQL text cannot hold NUL at all (the
 * fuzz test found it as a 500), and the rest of C0 has no business in a name.
 */
const displayName = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

export const CreateUserBody = z.strictObject({ name: displayName(100) });
export const CreateProductBody = z.strictObject({
  name: displayName(200),
  price: won(MAX_PRICE),
  stock: z.int().min(0).max(MAX_STOCK),
});
export const UpdateProductBody = z
  .strictObject({ price: won(MAX_PRICE).optional(), stock: z.int().min(0).max(MAX_STOCK).optional() })
  .refine((b) => b.price !== undefined || b.stock !== undefined, 'give price, stock or both');

export const CreateCouponBody = z.strictObject({
  name: displayName(200),
  discountType: z.enum(['FIXED', 'RATE']),
  discountValue: z.int().min(1).max(MAX_PRICE).describe('won off for FIXED, percent (1-100) for RATE'),
  totalQuantity: z.int().min(1).max(100_000_000),
  minOrderAmount: won(MAX_BALANCE).optional(),
  issueStartsAt: timestamp.optional(),
  issueEndsAt: timestamp.optional(),
  validDays: z.int().min(1).max(3650).optional(),
});
/** The body of a grant and of a first-come issue. */
export const GrantCouponBody = z.strictObject({ userId: id });

// Responses

const OrderLine = z.object({
  productId: id,
  quantity: z.int(),
  unitPrice: z.int(),
  lineAmount: z.int(),
  refundedQuantity: z.int().describe('units of this line given back so far'),
});
export const OrderResponse = z.object({
  orderId: z.string(),
  userId: id,
  status: z.enum(['PAID', 'PARTIALLY_REFUNDED', 'CANCELLED']),
  items: z.array(OrderLine),
  totalAmount: z.int(),
  discountAmount: z.int(),
  paidAmount: z.int(),
  couponId: id.nullable(),
  createdAt: z.string(),
  cancelledAt: z.string().nullable().describe('when the order was cancelled and refunded; null until it is CANCELLED'),
  refundedAmount: z.int().describe('credited back so far: floor(paidAmount × gross refunded ÷ totalAmount); paidAmount once CANCELLED'),
});
const RefundFields = {
  refundId: z.string(),
  orderId: z.string(),
  items: z.array(z.object({ productId: id, quantity: z.int() })),
  amount: z.int().describe("what this refund credited: the rise of the order's refundedAmount"),
  createdAt: z.string(),
};
export const RefundResponse = z.object({ ...RefundFields, order: OrderResponse.describe('the order as this refund left it') });
export const OrderWithRefundsResponse = OrderResponse.extend({ refunds: z.array(z.object(RefundFields)).describe('partial refunds, oldest first') });
export const OrderPage = z.object({ items: z.array(OrderResponse), nextCursor: z.string().nullable() });
export const BalanceResponse = z.object({ userId: id, balance: z.int() });
export const LedgerPage = z.object({
  items: z.array(
    z.object({
      type: z.enum(['CHARGE', 'PAYMENT', 'REFUND']),
      amount: z.int().describe('signed: what the entry added to the balance (payments are negative)'),
      balanceAfter: z.int(),
      orderId: z.string().nullable(),
      createdAt: z.string(),
    }),
  ),
  nextCursor: z.string().nullable(),
});
export const ProductResponse = z.object({ productId: id, name: z.string(), price: z.int(), stock: z.int() });
export const ProductPage = z.object({ items: z.array(ProductResponse), nextCursor: z.string().nullable() });
export const UserResponse = z.object({ userId: id, name: z.string(), balance: z.int() });
export const UserCouponResponse = z.object({
  couponId: id,
  userId: id,
  name: z.string(),
  discountType: z.enum(['FIXED', 'RATE']),
  discountValue: z.int(),
  minOrderAmount: z.int(),
  status: z.enum(['AVAILABLE', 'USED', 'EXPIRED']),
  issuedAt: z.string(),
  usedAt: z.string().nullable(),
  expiresAt: z.string(),
  orderId: z.string().nullable(),
});
export const UserCouponList = z.object({ items: z.array(UserCouponResponse) });
export const CouponResponse = z.object({
  couponId: id,
  name: z.string(),
  discountType: z.enum(['FIXED', 'RATE']),
  discountValue: z.int(),
  totalQuantity: z.int(),
  issuedQuantity: z.int(),
  minOrderAmount: z.int(),
  issueStartsAt: z.string().nullable(),
  issueEndsAt: z.string().nullable(),
  validDays: z.int(),
});
export const ProblemResponse = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.string(),
  })
  .describe('application/problem+json (RFC 9457)');

export const EventsQuery = z.strictObject({
  status: z.enum(['pending', 'failed']).default('pending'),
  limit: limitParam(100, 20),
  cursor: cursorParam,
});
export const EventResponse = z.object({
  eventId: z.string(),
  type: z.string(),
  aggregateId: z.string(),
  attempts: z.int(),
  nextAttemptAt: z.string(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
  payload: z.unknown(),
});
export const EventPage = z.object({ items: z.array(EventResponse), nextCursor: z.string().nullable() });

export const BestSellersQuery = z.strictObject({ days: limitParam(30, 3), limit: limitParam(100, 5) });
export const BestSellersResponse = z.object({
  from: z.string(),
  to: z.string(),
  items: z.array(
    z.object({ rank: z.int(), productId: id, name: z.string(), price: z.int(), soldQuantity: z.int() }),
  ),
});
