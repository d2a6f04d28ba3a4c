/**
 * A client of every operation of /openapi.json, written only against the types openapi-typescript
 * generates from it, the way a generated SDK is used. apps/api/test/openapi.test.ts generates
 * `openapi.ts` from the live document next to a copy of this file and type-checks the two with
 * tsc: it fails when an operation loses or changes its operationId, moves, is added without a
 * route here, or when a request or answer no longer has the shape used below. The test then runs
 * callEveryOperation against the live app.
 * Not part of the repository's own typecheck (tsconfig.json excludes it): openapi.ts is generated.
 */
import type { operations, paths } from './openapi.ts';

type Method = 'get' | 'put' | 'post' | 'delete' | 'patch';
type OperationId = keyof operations;

/** true when A and B are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** The [method, path] pairs at which `paths` has operations[K]. */
type RouteOf<K extends OperationId> = {
  [P in keyof paths]: { [M in Method & keyof paths[P]]: Same<paths[P][M], operations[K]> extends true ? readonly [M, P] : never }[Method &
    keyof paths[P]];
}[keyof paths];

/** What a request of an operation carries: its parameters, and its JSON body when it has one. */
type Init<O> = { params: O extends { parameters: infer P } ? P : never } & (O extends {
  requestBody: { content: { 'application/json': infer B } };
}
  ? { body: B }
  : { body?: never });

type Success = 200 | 201 | 202;
/** The body of a successful answer of an operation, whatever its media type. */
type Answer<O> = O extends { responses: infer R }
  ? { [S in keyof R & Success]: R[S] extends { content: infer C } ? C[keyof C] : undefined }[keyof R & Success]
  : never;
/** The problem+json body of a 4xx answer. */
type Problem<O> = O extends { responses: { '4XX': { content: { 'application/json': infer P } } } } ? P : never;

/**
 * Where each operation is, as a generated SDK records it. Every operationId of the document must
 * be here, and each at the method and path the document gives it.
 */
const routes: { [K in OperationId]: RouteOf<K> } = {
  placeOrder: ['post', '/orders'],
  getOrder: ['get', '/orders/{orderId}'],
  cancelOrder: ['post', '/orders/{orderId}/cancel'],
  refundOrder: ['post', '/orders/{orderId}/refunds'],
  listUserOrders: ['get', '/users/{userId}/orders'],
  getBalance: ['get', '/users/{userId}/balance'],
  chargeBalance: ['post', '/users/{userId}/balance/charge'],
  getBalanceHistory: ['get', '/users/{userId}/balance/history'],
  listProducts: ['get', '/products'],
  getBestSellers: ['get', '/products/top'],
  getProduct: ['get', '/products/{productId}'],
  issueCoupon: ['post', '/coupons/{couponId}/issue'],
  listUserCoupons: ['get', '/users/{userId}/coupons'],
  createUser: ['post', '/admin/users'],
  createProduct: ['post', '/admin/products'],
  updateProduct: ['patch', '/admin/products/{productId}'],
  createCoupon: ['post', '/admin/coupons'],
  grantCoupon: ['post', '/admin/coupons/{couponId}/grant'],
  listEvents: ['get', '/admin/events'],
  redeliverEvent: ['post', '/admin/events/{eventId}/redeliver'],
  getLiveness: ['get', '/health/live'],
  getReadiness: ['get', '/health/ready'],
  getMetrics: ['get', '/metrics'],
};

export class ApiError<K extends OperationId> extends Error {
  readonly operationId: K;
  readonly status: number;
  readonly problem: Problem<operations[K]>;
  constructor(operationId: K, status: number, problem: Problem<operations[K]>) {
    super(`${operationId}: ${status} ${JSON.stringify(problem)}`);
    this.operationId = operationId;
    this.status = status;
    this.problem = problem;
  }
}

/** One call of operation `id`, as a generated client method would make it. */
export async function call<K extends OperationId>(baseUrl: string, token: string | null, id: K, init: Init<operations[K]>): Promise<Answer<operations[K]>> {
  const [method, template] = routes[id];
  const params = init.params as { path?: Record<string, string>; query?: Record<string, string>; header?: Record<string, string> };
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params.path?.[name] ?? ''));
  const query = new URLSearchParams(params.query ?? {}).toString();
  const headers: Record<string, string> = { ...params.header };
  if (token) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}${query ? `?${query}` : ''}`, {
    method: method.toUpperCase(),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const json = (res.headers.get('content-type') ?? '').includes('json');
  const body: unknown = json ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(id, res.status, body as Problem<operations[K]>);
  return body as Answer<operations[K]>;
}

/**
 * A call of every operation, each typed by the generated types alone: request parameters and
 * bodies as the document declares them, answers read as the document declares them.
 */
export async function callEveryOperation(baseUrl: string, admin: string, userToken: (userId: number) => Promise<string>): Promise<void> {
  const api = <K extends OperationId>(token: string | null, id: K, init: Init<operations[K]>) => call(baseUrl, token, id, init);

  const live: string = (await api(null, 'getLiveness', { params: {} })).status;
  const ready: string = (await api(null, 'getReadiness', { params: {} })).status;
  const metrics: string = await api(admin, 'getMetrics', { params: {} });

  const user = await api(admin, 'createUser', { params: {}, body: { name: 'Kim' } });
  const userId: number = user.userId;
  const token = await userToken(userId);
  const product = await api(admin, 'createProduct', { params: {}, body: { name: 'Green tea', price: 4_500, stock: 12 } });
  const productId = String(product.productId);
  const updated = await api(admin, 'updateProduct', { params: { path: { productId } }, body: { stock: 20 } });
  const stock: number = updated.stock;
  const coupon = await api(admin, 'createCoupon', {
    params: {},
    body: { name: 'Welcome', discountType: 'FIXED', discountValue: 1_000, totalQuantity: 10, validDays: 30 },
  });
  const couponId = String(coupon.couponId);
  const other = await api(admin, 'createUser', { params: {}, body: { name: 'Lee' } });
  const granted = await api(admin, 'grantCoupon', { params: { path: { couponId } }, body: { userId: other.userId } });
  const grantedTo: number = granted.userId;

  const products = await api(null, 'listProducts', { params: { query: { limit: '20' } } });
  const names: string[] = products.items.map((p) => p.name);
  const nextProducts: string | null = products.nextCursor;
  const one = await api(null, 'getProduct', { params: { path: { productId } } });
  const price: number = one.price;
  const top = await api(null, 'getBestSellers', { params: { query: { days: '3', limit: '5' } } });
  const since: string = top.from;

  const charged = await api(token, 'chargeBalance', {
    params: { path: { userId: String(userId) }, header: { 'idempotency-key': 'charge-1' } },
    body: { amount: 50_000 },
  });
  const balance: number = charged.balance;
  const read = await api(token, 'getBalance', { params: { path: { userId: String(userId) } } });
  const history = await api(token, 'getBalanceHistory', { params: { path: { userId: String(userId) }, query: { limit: '10' } } });
  const entries: number = history.items.length;

  const held = await api(token, 'issueCoupon', { params: { path: { couponId } }, body: { userId } });
  const couponsHeld = await api(token, 'listUserCoupons', { params: { path: { userId: String(userId) } } });
  const heldIds: number[] = couponsHeld.items.map((c) => c.couponId);

  const order = await api(token, 'placeOrder', {
    params: { header: { 'idempotency-key': 'order-1' } },
    body: { userId, items: [{ productId: product.productId, quantity: 2 }], couponId: held.couponId },
  });
  const orderId: string = order.orderId;
  const refund = await api(token, 'refundOrder', {
    params: { path: { orderId }, header: { 'idempotency-key': 'refund-1' } },
    body: { items: [{ productId: product.productId, quantity: 1 }] },
  });
  const refundedAmount: number = refund.amount + refund.order.refundedAmount;
  const read1 = await api(token, 'getOrder', { params: { path: { orderId } } });
  const status: 'PAID' | 'PARTIALLY_REFUNDED' | 'CANCELLED' = read1.status;
  const refundIds: string[] = read1.refunds.map((r) => r.refundId);
  const orders = await api(token, 'listUserOrders', { params: { path: { userId: String(userId) }, query: { limit: '5' } } });
  const totals: number[] = orders.items.map((o) => o.totalAmount);
  const cancelled = await api(token, 'cancelOrder', { params: { path: { orderId } }, body: {} });
  const cancelledAt: string | null = cancelled.cancelledAt;

  const events = await api(admin, 'listEvents', { params: { query: { status: 'pending', limit: '10' } } });
  // The order's events are pending while no relay delivers them (the test runs the app without one).
  const eventId = events.items[0]?.eventId;
  if (eventId === undefined) throw new Error('listEvents: no pending event to redeliver');
  const again = await api(admin, 'redeliverEvent', { params: { path: { eventId } }, body: null });
  const attempts: number = again.attempts;

  try {
    await api(token, 'getOrder', { params: { path: { orderId: 'no-such-order' } } });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const code: string = (err as ApiError<'getOrder'>).problem.code;
    void code;
  }

  void [live, ready, metrics, stock, grantedTo, names, nextProducts, price, since, balance, read.balance, entries, heldIds, status, totals, cancelledAt, attempts, refundedAmount, refundIds];
}
