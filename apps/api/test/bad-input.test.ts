import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { signToken } from '@shop/adapters-http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { secretBytes, startTestApp, type Client, type Reply, type TestApp } from '../../../test/support/http.ts';
import { fingerprint, type Fingerprint } from '../../../test/support/fingerprint.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';

/**
 * Bad input on every endpoint gets a clear 4xx application/problem+json and changes nothing.
 *
 * The relay and the sales rollup are switched off (OUTBOX_RELAY=off, a one-hour rollup period) so
 * that nothing but the requests themselves can write: the whole database is fingerprinted before
 * the bad requests and must be byte-for-byte the same after them.
 */

let tdb: TestDatabase;
let app: TestApp;
let client: Client;

interface World {
  a: { userId: number; token: string };
  b: { userId: number; token: string };
  /** Stock 10, price 1,000; A has ordered 1 of it. */
  p1: number;
  /** Stock 5, price 2,000. */
  p2: number;
  /** Price 1,000,000: more than anyone's balance. */
  pricey: number;
  /** FIXED 500, granted to A. */
  heldCoupon: number;
  /** Open for first-come issue, nobody holds it. */
  openCoupon: number;
  /** One copy, granted to B. */
  exhaustedCoupon: number;
  /** Issue window in the future. */
  futureCoupon: number;
  orderId: string;
  eventId: string;
  /** The Idempotency-Key of A's order. */
  usedKey: string;
  tokens: Record<
    'forged' | 'forgedAdmin' | 'algNone' | 'algNoneAdmin' | 'expired' | 'hs512' | 'badSub' | 'noSub' | 'garbage' | 'unknownUser' | 'maxSafeUser',
    string
  >;
}

let w: World;
/** The whole database once arranged: the bad requests must leave it exactly so. */
let before: Fingerprint;

const UNKNOWN_ID = 987_654_321;
const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 9007199254740991: valid as an id, names nothing
const OTHER_SECRET = new TextEncoder().encode('another-secret-that-is-also-32-bytes-long!!');
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const unsignedToken = (payload: Record<string, unknown>) => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off', TOP_SELLERS_REFRESH_MS: '3600000' });
  client = app.client;

  const a = await client.createUser(100_000, 'user a');
  const b = await client.createUser(50_000, 'user b');
  const p1 = await client.createProduct(1_000, 10, 'p1');
  const p2 = await client.createProduct(2_000, 5, 'p2');
  const pricey = await client.createProduct(1_000_000, 5, 'pricey');
  const heldCoupon = await client.createCoupon({ discountType: 'FIXED', discountValue: 500 });
  await client.grant(heldCoupon, a.userId);
  const openCoupon = await client.createCoupon({ discountType: 'RATE', discountValue: 10 });
  const exhaustedCoupon = await client.createCoupon({ discountType: 'FIXED', discountValue: 100, totalQuantity: 1 });
  await client.grant(exhaustedCoupon, b.userId);
  const futureCoupon = await client.createCoupon({
    discountType: 'FIXED',
    discountValue: 100,
    issueStartsAt: new Date(Date.now() + 30 * 86_400_000).toISOString(),
  });

  const usedKey = 'bad-input-order-1';
  const order = await client.post(
    '/orders',
    { userId: a.userId, items: [{ productId: p1, quantity: 1 }] },
    { token: a.token, headers: { 'idempotency-key': usedKey } },
  );
  expect(order.status).toBe(201);
  const [event] = await tdb.query<{ event_id: string }>('SELECT event_id FROM outbox_events WHERE aggregate_id = $1', [
    order.body.orderId,
  ]);

  const now = Math.floor(Date.now() / 1000);
  w = {
    a,
    b,
    p1,
    p2,
    pricey,
    heldCoupon,
    openCoupon,
    exhaustedCoupon,
    futureCoupon,
    orderId: order.body.orderId,
    eventId: event!.event_id,
    usedKey,
    tokens: {
      forged: await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(String(a.userId)).setExpirationTime('1h').sign(OTHER_SECRET),
      forgedAdmin: await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(OTHER_SECRET),
      algNone: unsignedToken({ sub: String(a.userId) }),
      algNoneAdmin: unsignedToken({ role: 'admin' }),
      expired: await new SignJWT({ role: 'admin' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(String(a.userId))
        .setIssuedAt(now - 7200)
        .setExpirationTime(now - 3600)
        .sign(secretBytes),
      hs512: await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS512' }).setExpirationTime('1h').sign(secretBytes),
      badSub: await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('abc').setExpirationTime('1h').sign(secretBytes),
      noSub: await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secretBytes),
      garbage: 'not-a-jwt',
      // Valid tokens of users that do not exist: placing an order or claiming a coupon takes the
      // user's own token (an admin token is 403), so these are how USER_NOT_FOUND is reached.
      unknownUser: await signToken(secretBytes, { userId: UNKNOWN_ID }),
      maxSafeUser: await signToken(secretBytes, { userId: MAX_SAFE }),
    },
  };
  before = await fingerprint(tdb);
});

afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

// ---------------------------------------------------------------------------------------------
// The cases.

interface Case {
  readonly name: string;
  readonly send: (w: World) => Promise<Reply>;
  readonly status: number;
  readonly code: string;
}

type Token = 'admin' | 'a' | 'b' | 'none' | keyof World['tokens'];
const tokenOf = (t: Token): string | null =>
  t === 'admin' ? client.adminToken : t === 'a' ? w.a.token : t === 'b' ? w.b.token : t === 'none' ? null : w.tokens[t];

/** A raw body, sent as the bytes given: JSON.stringify cannot write 9007199254740993 or 1e309. */
const raw = (method: string, path: string, body: string, token: Token = 'admin', headers: Record<string, string> = {}) =>
  client.request(method, path, undefined, { rawBody: body, token: tokenOf(token), headers });
const json = (method: string, path: string, body: unknown, token: Token = 'admin', headers: Record<string, string> = {}) =>
  client.request(method, path, body, { token: tokenOf(token), headers });
const get = (path: string, token: Token = 'admin') => client.get(path, { token: tokenOf(token) });

const V400 = { status: 400, code: 'VALIDATION_ERROR' } as const;
/** A body that is not application/json (contract: 415), whatever it holds. */
const U415 = { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } as const;
const c = (name: string, expected: { status: number; code: string }, send: (w: World) => Promise<Reply>): Case => ({
  name,
  send,
  ...expected,
});

const HUGE_INT = '9007199254740993'; // 2^53 + 1: JSON.parse rounds it to 2^53
const INFINITE = '1e309'; // JSON.parse makes it Infinity
const manyItems = (n: number, firstId = 1) => Array.from({ length: n }, (_, i) => ({ productId: firstId + i, quantity: 1 }));
const order = (w: World, extra: Record<string, unknown> = {}) => ({ userId: w.a.userId, items: [{ productId: w.p1, quantity: 1 }], ...extra });

/** A valid request on every authenticated endpoint, acting for user A. Only bad tokens meet these. */
const authedEndpoints: ReadonlyArray<{ name: string; admin: boolean; send: (w: World, t: Token) => Promise<Reply> }> = [
  { name: 'POST /orders', admin: false, send: (w, t) => json('POST', '/orders', order(w), t) },
  { name: 'GET /orders/:id', admin: false, send: (w, t) => get(`/orders/${w.orderId}`, t) },
  { name: 'GET /users/:id/orders', admin: false, send: (w, t) => get(`/users/${w.a.userId}/orders`, t) },
  { name: 'GET /users/:id/balance', admin: false, send: (w, t) => get(`/users/${w.a.userId}/balance`, t) },
  { name: 'POST /users/:id/balance/charge', admin: false, send: (w, t) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 1_000 }, t) },
  { name: 'GET /users/:id/balance/history', admin: false, send: (w, t) => get(`/users/${w.a.userId}/balance/history`, t) },
  { name: 'GET /users/:id/coupons', admin: false, send: (w, t) => get(`/users/${w.a.userId}/coupons`, t) },
  { name: 'POST /coupons/:id/issue', admin: false, send: (w, t) => json('POST', `/coupons/${w.openCoupon}/issue`, { userId: w.a.userId }, t) },
  { name: 'POST /admin/users', admin: true, send: (_w, t) => json('POST', '/admin/users', { name: 'intruder' }, t) },
  { name: 'POST /admin/products', admin: true, send: (_w, t) => json('POST', '/admin/products', { name: 'x', price: 1, stock: 1 }, t) },
  { name: 'PATCH /admin/products/:id', admin: true, send: (w, t) => json('PATCH', `/admin/products/${w.p1}`, { price: 1 }, t) },
  {
    name: 'POST /admin/coupons',
    admin: true,
    send: (_w, t) => json('POST', '/admin/coupons', { name: 'x', discountType: 'FIXED', discountValue: 1, totalQuantity: 1 }, t),
  },
  { name: 'POST /admin/coupons/:id/grant', admin: true, send: (w, t) => json('POST', `/admin/coupons/${w.openCoupon}/grant`, { userId: w.a.userId }, t) },
  { name: 'GET /admin/events', admin: true, send: (_w, t) => get('/admin/events', t) },
  { name: 'POST /admin/events/:id/redeliver', admin: true, send: (w, t) => raw('POST', `/admin/events/${w.eventId}/redeliver`, '{}', t) },
];

const BAD_TOKENS: ReadonlyArray<{ kind: Token; what: string }> = [
  { kind: 'none', what: 'no token' },
  { kind: 'forged', what: 'a user token signed with another secret' },
  { kind: 'forgedAdmin', what: 'an admin token signed with another secret' },
  { kind: 'algNone', what: 'an unsigned alg "none" user token' },
  { kind: 'algNoneAdmin', what: 'an unsigned alg "none" admin token' },
  { kind: 'expired', what: 'an expired admin token' },
  { kind: 'hs512', what: 'an HS512 admin token (only HS256 is accepted)' },
  { kind: 'badSub', what: 'a token whose sub is not a user id' },
  { kind: 'noSub', what: 'a user token without sub' },
  { kind: 'garbage', what: 'a token that is not a JWT' },
];

const authCases: Case[] = [
  ...authedEndpoints.flatMap((e) =>
    BAD_TOKENS.map(({ kind, what }) => c(`${e.name} with ${what}`, { status: 401, code: 'UNAUTHORIZED' }, (w) => e.send(w, kind))),
  ),
  c('a Basic Authorization header', { status: 401, code: 'UNAUTHORIZED' }, (w) =>
    client.get(`/users/${w.a.userId}/balance`, { token: null, headers: { authorization: 'Basic dXNlcjpwYXNz' } }),
  ),
  c('a Bearer header with an empty token', { status: 401, code: 'UNAUTHORIZED' }, (w) =>
    client.get(`/users/${w.a.userId}/balance`, { token: null, headers: { authorization: 'Bearer ' } }),
  ),
  ...authedEndpoints
    .filter((e) => e.admin)
    .map((e) => c(`${e.name} with a user token`, { status: 403, code: 'FORBIDDEN' }, (w) => e.send(w, 'a'))),
  ...authedEndpoints
    .filter((e) => !e.admin)
    .map((e) => c(`${e.name} for user A with user B's token`, { status: 403, code: 'FORBIDDEN' }, (w) => e.send(w, 'b'))),
  // Placing an order and claiming a coupon are the user's own acts: an admin token is refused.
  ...authedEndpoints
    .filter((e) => e.name === 'POST /orders' || e.name === 'POST /coupons/:id/issue')
    .map((e) => c(`${e.name} for user A with an admin token`, { status: 403, code: 'FORBIDDEN' }, (w) => e.send(w, 'admin'))),
];

const ordersCases: Case[] = [
  c('malformed JSON', V400, () => raw('POST', '/orders', '{', 'a')),
  c('malformed JSON without a token: validation comes first', V400, () => raw('POST', '/orders', '{', 'none')),
  c('truncated JSON', V400, (w) => raw('POST', '/orders', `{"userId":${w.a.userId},"items":[`, 'a')),
  c('empty body with content-type json', V400, () => raw('POST', '/orders', '', 'a')),
  c('no body at all', V400, () => client.request('POST', '/orders', undefined, { token: w.a.token })),
  c('JSON null', V400, () => raw('POST', '/orders', 'null', 'a')),
  c('a JSON array instead of an object', V400, (w) => json('POST', '/orders', [order(w)], 'a')),
  c('a JSON string', V400, () => raw('POST', '/orders', '"order"', 'a')),
  c('text/plain that is not JSON', U415, () => raw('POST', '/orders', 'userId=1', 'a', { 'content-type': 'text/plain' })),
  c('text/plain that is JSON', U415, (w) => raw('POST', '/orders', JSON.stringify(order(w)), 'a', { 'content-type': 'text/plain' })),
  c('form-urlencoded', U415, (w) =>
    raw('POST', '/orders', `userId=${w.a.userId}&productId=${w.p1}`, 'a', { 'content-type': 'application/x-www-form-urlencoded' }),
  ),
  c('__proto__ in the body', V400, (w) =>
    raw('POST', '/orders', `{"userId":${w.a.userId},"items":[{"productId":${w.p1},"quantity":1}],"__proto__":{"admin":true}}`, 'a'),
  ),
  c('userId as a string', V400, (w) => json('POST', '/orders', order(w, { userId: String(w.a.userId) }), 'a')),
  c('userId 0', V400, (w) => json('POST', '/orders', order(w, { userId: 0 }), 'a')),
  c('userId negative', V400, (w) => json('POST', '/orders', order(w, { userId: -w.a.userId }), 'a')),
  c('userId 1.5', V400, (w) => json('POST', '/orders', order(w, { userId: 1.5 }), 'a')),
  c('userId 2^53+1 raw', V400, (w) => raw('POST', '/orders', `{"userId":${HUGE_INT},"items":[{"productId":${w.p1},"quantity":1}]}`)),
  c('userId 1e309 raw', V400, (w) => raw('POST', '/orders', `{"userId":${INFINITE},"items":[{"productId":${w.p1},"quantity":1}]}`)),
  c('missing userId', V400, (w) => json('POST', '/orders', { items: [{ productId: w.p1, quantity: 1 }] }, 'a')),
  c('missing items', V400, (w) => json('POST', '/orders', { userId: w.a.userId }, 'a')),
  c('items an object, not an array', V400, (w) => json('POST', '/orders', order(w, { items: { productId: w.p1, quantity: 1 } }), 'a')),
  c('items a string', V400, (w) => json('POST', '/orders', order(w, { items: 'p1' }), 'a')),
  c('empty items', V400, (w) => json('POST', '/orders', order(w, { items: [] }), 'a')),
  c('101 items', V400, (w) => json('POST', '/orders', order(w, { items: manyItems(101, w.p1) }), 'a')),
  c('a productId twice', V400, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 1 }, { productId: w.p1, quantity: 2 }] }), 'a'),
  ),
  c('an item an array', V400, (w) => json('POST', '/orders', order(w, { items: [[w.p1, 1]] }), 'a')),
  c('quantity 0', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 0 }] }), 'a')),
  c('quantity negative', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: -1 }] }), 'a')),
  c('quantity 1.5', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 1.5 }] }), 'a')),
  c('quantity as a string', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: '1' }] }), 'a')),
  c('quantity 10,001', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 10_001 }] }), 'a')),
  c('quantity 2^53+1 raw', V400, (w) =>
    raw('POST', '/orders', `{"userId":${w.a.userId},"items":[{"productId":${w.p1},"quantity":${HUGE_INT}}]}`, 'a'),
  ),
  c('quantity 1e309 raw', V400, (w) =>
    raw('POST', '/orders', `{"userId":${w.a.userId},"items":[{"productId":${w.p1},"quantity":${INFINITE}}]}`, 'a'),
  ),
  c('quantity -1e309 raw', V400, (w) =>
    raw('POST', '/orders', `{"userId":${w.a.userId},"items":[{"productId":${w.p1},"quantity":-${INFINITE}}]}`, 'a'),
  ),
  c('productId 0', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: 0, quantity: 1 }] }), 'a')),
  c('productId 1.5', V400, (w) => json('POST', '/orders', order(w, { items: [{ productId: 1.5, quantity: 1 }] }), 'a')),
  c('productId 2^53+1 raw', V400, (w) =>
    raw('POST', '/orders', `{"userId":${w.a.userId},"items":[{"productId":${HUGE_INT},"quantity":1}]}`, 'a'),
  ),
  c('couponId as a string', V400, (w) => json('POST', '/orders', order(w, { couponId: String(w.heldCoupon) }), 'a')),
  c('couponId 0', V400, (w) => json('POST', '/orders', order(w, { couponId: 0 }), 'a')),
  c('couponId null', V400, (w) => json('POST', '/orders', order(w, { couponId: null }), 'a')),
  c('couponId 1e309 raw', V400, (w) =>
    raw('POST', '/orders', `{"userId":${w.a.userId},"items":[{"productId":${w.p1},"quantity":1}],"couponId":${INFINITE}}`, 'a'),
  ),
  c('an unknown field (coupon_id)', V400, (w) => json('POST', '/orders', order(w, { coupon_id: w.heldCoupon }), 'a')),
  c('an unknown field in an item', V400, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 1, unitPrice: 1 }] }), 'a'),
  ),
  c('an Idempotency-Key of 256 characters', V400, (w) => json('POST', '/orders', order(w), 'a', { 'idempotency-key': 'k'.repeat(256) })),
  c('an Idempotency-Key with a space', V400, (w) => json('POST', '/orders', order(w), 'a', { 'idempotency-key': 'two words' })),
  c('an empty Idempotency-Key', V400, (w) => json('POST', '/orders', order(w), 'a', { 'idempotency-key': '' })),
  c('an Idempotency-Key reused with another body', { status: 422, code: 'IDEMPOTENCY_KEY_REUSED' }, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 2 }] }), 'a', { 'idempotency-key': w.usedKey }),
  ),
  c('an unknown user', { status: 404, code: 'USER_NOT_FOUND' }, (w) => json('POST', '/orders', order(w, { userId: UNKNOWN_ID }), 'unknownUser')),
  c('the largest safe user id', { status: 404, code: 'USER_NOT_FOUND' }, (w) => json('POST', '/orders', order(w, { userId: MAX_SAFE }), 'maxSafeUser')),
  c('an unknown user with an admin token: the token is refused first', { status: 403, code: 'FORBIDDEN' }, (w) =>
    json('POST', '/orders', order(w, { userId: UNKNOWN_ID })),
  ),
  c('an unknown product', { status: 404, code: 'PRODUCT_NOT_FOUND' }, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 1 }, { productId: UNKNOWN_ID, quantity: 1 }] }), 'a'),
  ),
  c('the largest safe product id', { status: 404, code: 'PRODUCT_NOT_FOUND' }, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: MAX_SAFE, quantity: 1 }] }), 'a'),
  ),
  c('more than the stock', { status: 400, code: 'OUT_OF_STOCK' }, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: w.p1, quantity: 1 }, { productId: w.p2, quantity: 6 }] }), 'a'),
  ),
  c('an unknown coupon', { status: 400, code: 'INVALID_COUPON' }, (w) => json('POST', '/orders', order(w, { couponId: UNKNOWN_ID }), 'a')),
  c("another user's coupon", { status: 400, code: 'INVALID_COUPON' }, (w) =>
    json('POST', '/orders', { userId: w.b.userId, items: [{ productId: w.p1, quantity: 1 }], couponId: w.heldCoupon }, 'b'),
  ),
  c('more than the balance', { status: 400, code: 'INSUFFICIENT_BALANCE' }, (w) =>
    json('POST', '/orders', order(w, { items: [{ productId: w.pricey, quantity: 1 }], couponId: w.heldCoupon }), 'a'),
  ),
];

const NO_ORDER = { status: 404, code: 'ORDER_NOT_FOUND' } as const;
const orderReadCases: Case[] = [
  // An orderId is opaque: whatever its shape, a value that names no order is 404, never 400.
  c('GET /orders/:id not a uuid', NO_ORDER, () => get('/orders/not-a-uuid', 'a')),
  c('GET /orders/:id a number', NO_ORDER, () => get('/orders/123', 'a')),
  c('GET /orders/:id 36 dashes', NO_ORDER, () => get(`/orders/${'-'.repeat(36)}`, 'a')),
  c("GET /orders/:id the order's id in upper case", NO_ORDER, (w) => get(`/orders/${w.orderId.toUpperCase()}`, 'a')),
  c("GET /orders/:id the order's id and more", NO_ORDER, (w) => get(`/orders/${w.orderId}0`, 'a')),
  c('GET /orders/:id SQL', NO_ORDER, () => get(`/orders/${encodeURIComponent("1' OR '1'='1")}`, 'a')),
  c('GET /orders/:id odd characters', NO_ORDER, () => get(`/orders/${encodeURIComponent('🙂 \u0000 <script> %')}`, 'a')),
  c('GET /orders/:id 1,000 characters', NO_ORDER, () => get(`/orders/${'a'.repeat(1_000)}`, 'a')),
  c('GET /orders/:id unknown', NO_ORDER, () => get(`/orders/${randomUUID()}`)),
  c('GET /users/:id/orders non-numeric user', V400, () => get('/users/abc/orders', 'a')),
  c('GET /users/:id/orders user 0', V400, () => get('/users/0/orders')),
  c('GET /users/:id/orders overflowing user', V400, () => get('/users/99999999999999999999/orders')),
  c('GET /users/:id/orders unknown user', { status: 404, code: 'USER_NOT_FOUND' }, () => get(`/users/${UNKNOWN_ID}/orders`)),
  c('GET /users/:id/orders limit=0', V400, (w) => get(`/users/${w.a.userId}/orders?limit=0`, 'a')),
  c('GET /users/:id/orders limit=101', V400, (w) => get(`/users/${w.a.userId}/orders?limit=101`, 'a')),
  c('GET /users/:id/orders limit=-1', V400, (w) => get(`/users/${w.a.userId}/orders?limit=-1`, 'a')),
  c('GET /users/:id/orders limit=1.5', V400, (w) => get(`/users/${w.a.userId}/orders?limit=1.5`, 'a')),
  c('GET /users/:id/orders limit=abc', V400, (w) => get(`/users/${w.a.userId}/orders?limit=abc`, 'a')),
  c('GET /users/:id/orders limit given twice', V400, (w) => get(`/users/${w.a.userId}/orders?limit=1&limit=2`, 'a')),
  c('GET /users/:id/orders an unknown query parameter', V400, (w) => get(`/users/${w.a.userId}/orders?page=2`, 'a')),
  c('GET /users/:id/orders garbage cursor', V400, (w) => get(`/users/${w.a.userId}/orders?cursor=garbage`, 'a')),
  c('GET /users/:id/orders empty cursor', V400, (w) => get(`/users/${w.a.userId}/orders?cursor=`, 'a')),
  c('GET /users/:id/orders a product cursor', V400, (w) => get(`/users/${w.a.userId}/orders?cursor=${b64url(5)}`, 'a')),
  c('GET /users/:id/orders a cursor with a date out of range', V400, (w) =>
    get(`/users/${w.a.userId}/orders?cursor=${b64url(['-271821-04-20T00:00:00.000Z', randomUUID()])}`, 'a'),
  ),
  c('GET /users/:id/orders a cursor with a year past 9999', V400, (w) =>
    get(`/users/${w.a.userId}/orders?cursor=${b64url(['+275760-09-13T00:00:00.000Z', randomUUID()])}`, 'a'),
  ),
  c('GET /users/:id/orders a cursor whose id is not a uuid', V400, (w) =>
    get(`/users/${w.a.userId}/orders?cursor=${b64url([new Date().toISOString(), '-'.repeat(36)])}`, 'a'),
  ),
  c('GET /users/:id/orders a 513-character cursor', V400, (w) => get(`/users/${w.a.userId}/orders?cursor=${'a'.repeat(513)}`, 'a')),
];

const balanceCases: Case[] = [
  c('GET balance non-numeric user', V400, () => get('/users/abc/balance', 'a')),
  c('GET balance user 0', V400, () => get('/users/0/balance')),
  c('GET balance negative user', V400, () => get('/users/-1/balance')),
  c('GET balance user 1.5', V400, () => get('/users/1.5/balance')),
  c('GET balance user with a leading zero', V400, (w) => get(`/users/0${w.a.userId}/balance`)),
  c('GET balance overflowing user (20 digits)', V400, () => get('/users/99999999999999999999/balance')),
  c('GET balance user above 2^53 (16 digits)', V400, () => get('/users/9999999999999999/balance')),
  c('GET balance unknown user', { status: 404, code: 'USER_NOT_FOUND' }, () => get(`/users/${UNKNOWN_ID}/balance`)),
  c('GET balance the largest safe user id', { status: 404, code: 'USER_NOT_FOUND' }, () => get(`/users/${MAX_SAFE}/balance`)),

  c('charge malformed JSON', V400, (w) => raw('POST', `/users/${w.a.userId}/balance/charge`, '{', 'a')),
  c('charge text/plain that is not JSON', U415, (w) =>
    raw('POST', `/users/${w.a.userId}/balance/charge`, 'amount=1000', 'a', { 'content-type': 'text/plain' }),
  ),
  c('charge an array body', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, [{ amount: 1_000 }], 'a')),
  c('charge empty object', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, {}, 'a')),
  c('charge amount as a string', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: '1000' }, 'a')),
  c('charge amount an object', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: { value: 1000 } }, 'a')),
  c('charge amount 0', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 0 }, 'a')),
  c('charge amount negative', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: -1_000 }, 'a')),
  c('charge amount 1.5', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 1.5 }, 'a')),
  c('charge amount 10,000,001', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 10_000_001 }, 'a')),
  c('charge amount 2^53+1 raw', V400, (w) => raw('POST', `/users/${w.a.userId}/balance/charge`, `{"amount":${HUGE_INT}}`, 'a')),
  c('charge amount 1e309 raw', V400, (w) => raw('POST', `/users/${w.a.userId}/balance/charge`, `{"amount":${INFINITE}}`, 'a')),
  c('charge an unknown field', V400, (w) => json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 1_000, currency: 'KRW' }, 'a')),
  c('charge non-numeric user', V400, () => json('POST', '/users/abc/balance/charge', { amount: 1_000 })),
  c('charge overflowing user', V400, () => json('POST', '/users/99999999999999999999/balance/charge', { amount: 1_000 })),
  c('charge unknown user', { status: 404, code: 'USER_NOT_FOUND' }, () => json('POST', `/users/${UNKNOWN_ID}/balance/charge`, { amount: 1_000 })),
  c('charge an Idempotency-Key of 256 characters', V400, (w) =>
    json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 1_000 }, 'a', { 'idempotency-key': 'k'.repeat(256) }),
  ),
  c('charge an Idempotency-Key with a non-ASCII character', V400, (w) =>
    json('POST', `/users/${w.a.userId}/balance/charge`, { amount: 1_000 }, 'a', { 'idempotency-key': 'key\u00e9' }),
  ),

  c('history non-numeric user', V400, () => get('/users/abc/balance/history', 'a')),
  c('history overflowing user', V400, () => get('/users/99999999999999999999/balance/history')),
  c('history unknown user', { status: 404, code: 'USER_NOT_FOUND' }, () => get(`/users/${UNKNOWN_ID}/balance/history`)),
  c('history limit=0', V400, (w) => get(`/users/${w.a.userId}/balance/history?limit=0`, 'a')),
  c('history limit=101', V400, (w) => get(`/users/${w.a.userId}/balance/history?limit=101`, 'a')),
  c('history limit=99999', V400, (w) => get(`/users/${w.a.userId}/balance/history?limit=99999`, 'a')),
  c('history garbage cursor', V400, (w) => get(`/users/${w.a.userId}/balance/history?cursor=%%%`, 'a')),
  c('history a cursor of 0', V400, (w) => get(`/users/${w.a.userId}/balance/history?cursor=${b64url(0)}`, 'a')),
  c('history a cursor above 2^53', V400, (w) => get(`/users/${w.a.userId}/balance/history?cursor=${Buffer.from(HUGE_INT).toString('base64url')}`, 'a')),
];

const productCases: Case[] = [
  c('GET /products limit=0', V400, () => get('/products?limit=0', 'none')),
  c('GET /products limit=101', V400, () => get('/products?limit=101', 'none')),
  c('GET /products limit=abc', V400, () => get('/products?limit=abc', 'none')),
  c('GET /products limit=1e3', V400, () => get('/products?limit=1e3', 'none')),
  c('GET /products garbage cursor', V400, () => get('/products?cursor=garbage', 'none')),
  c('GET /products an order cursor', V400, () => get(`/products?cursor=${b64url([new Date().toISOString(), randomUUID()])}`, 'none')),
  c('GET /products a negative cursor', V400, () => get(`/products?cursor=${b64url(-1)}`, 'none')),
  c('GET /products an unknown query parameter', V400, () => get('/products?sort=price', 'none')),
  c('GET /products/:id non-numeric', V400, () => get('/products/abc', 'none')),
  c('GET /products/:id 0', V400, () => get('/products/0', 'none')),
  c('GET /products/:id negative', V400, () => get('/products/-5', 'none')),
  c('GET /products/:id 1.5', V400, () => get('/products/1.5', 'none')),
  c('GET /products/:id overflowing', V400, () => get('/products/99999999999999999999', 'none')),
  c('GET /products/:id unknown', { status: 404, code: 'PRODUCT_NOT_FOUND' }, () => get(`/products/${UNKNOWN_ID}`, 'none')),
  c('GET /products/:id the largest safe id', { status: 404, code: 'PRODUCT_NOT_FOUND' }, () => get(`/products/${MAX_SAFE}`, 'none')),
  c('GET /products/top days=0', V400, () => get('/products/top?days=0', 'none')),
  c('GET /products/top days=31', V400, () => get('/products/top?days=31', 'none')),
  c('GET /products/top days=-1', V400, () => get('/products/top?days=-1', 'none')),
  c('GET /products/top days=abc', V400, () => get('/products/top?days=abc', 'none')),
  c('GET /products/top limit=0', V400, () => get('/products/top?limit=0', 'none')),
  c('GET /products/top limit=101', V400, () => get('/products/top?limit=101', 'none')),
  c('GET /products/top an unknown query parameter', V400, () => get('/products/top?hours=3', 'none')),
];

const couponCases: Case[] = [
  c('GET coupons non-numeric user', V400, () => get('/users/abc/coupons', 'a')),
  c('GET coupons overflowing user', V400, () => get('/users/99999999999999999999/coupons')),
  c('GET coupons unknown user', { status: 404, code: 'USER_NOT_FOUND' }, () => get(`/users/${UNKNOWN_ID}/coupons`)),

  c('issue malformed JSON', V400, (w) => raw('POST', `/coupons/${w.openCoupon}/issue`, '{', 'a')),
  c('issue text/plain that is not JSON', U415, (w) => raw('POST', `/coupons/${w.openCoupon}/issue`, 'user', 'a', { 'content-type': 'text/plain' })),
  c('issue empty object', V400, (w) => json('POST', `/coupons/${w.openCoupon}/issue`, {}, 'a')),
  c('issue userId as a string', V400, (w) => json('POST', `/coupons/${w.openCoupon}/issue`, { userId: String(w.a.userId) }, 'a')),
  c('issue userId an array', V400, (w) => json('POST', `/coupons/${w.openCoupon}/issue`, { userId: [w.a.userId] }, 'a')),
  c('issue userId 0', V400, (w) => json('POST', `/coupons/${w.openCoupon}/issue`, { userId: 0 }, 'a')),
  c('issue userId 1.5', V400, (w) => json('POST', `/coupons/${w.openCoupon}/issue`, { userId: 1.5 }, 'a')),
  c('issue userId 2^53+1 raw', V400, (w) => raw('POST', `/coupons/${w.openCoupon}/issue`, `{"userId":${HUGE_INT}}`, 'a')),
  c('issue userId 1e309 raw', V400, (w) => raw('POST', `/coupons/${w.openCoupon}/issue`, `{"userId":${INFINITE}}`, 'a')),
  c('issue non-numeric coupon', V400, (w) => json('POST', '/coupons/abc/issue', { userId: w.a.userId }, 'a')),
  c('issue overflowing coupon', V400, (w) => json('POST', '/coupons/99999999999999999999/issue', { userId: w.a.userId }, 'a')),
  c('issue an unknown coupon', { status: 404, code: 'COUPON_NOT_FOUND' }, (w) =>
    json('POST', `/coupons/${UNKNOWN_ID}/issue`, { userId: w.a.userId }, 'a'),
  ),
  c('issue to an unknown user', { status: 404, code: 'USER_NOT_FOUND' }, (w) =>
    json('POST', `/coupons/${w.openCoupon}/issue`, { userId: UNKNOWN_ID }, 'unknownUser'),
  ),
  c('issue to an unknown user with an admin token: the token is refused first', { status: 403, code: 'FORBIDDEN' }, (w) =>
    json('POST', `/coupons/${w.openCoupon}/issue`, { userId: UNKNOWN_ID }),
  ),
  c('issue a coupon already held', { status: 409, code: 'COUPON_ALREADY_ISSUED' }, (w) =>
    json('POST', `/coupons/${w.heldCoupon}/issue`, { userId: w.a.userId }, 'a'),
  ),
  c('issue an exhausted coupon', { status: 409, code: 'COUPON_EXHAUSTED' }, (w) =>
    json('POST', `/coupons/${w.exhaustedCoupon}/issue`, { userId: w.a.userId }, 'a'),
  ),
  c('issue a coupon before its window', { status: 400, code: 'COUPON_NOT_ISSUABLE' }, (w) =>
    json('POST', `/coupons/${w.futureCoupon}/issue`, { userId: w.a.userId }, 'a'),
  ),
];

const coupon = (extra: Record<string, unknown> = {}) => ({ name: 'c', discountType: 'FIXED', discountValue: 100, totalQuantity: 10, ...extra });
const adminCases: Case[] = [
  c('create user malformed JSON', V400, () => raw('POST', '/admin/users', '{')),
  c('create user text/plain that is not JSON', U415, () => raw('POST', '/admin/users', 'name=x', 'admin', { 'content-type': 'text/plain' })),
  c('create user missing name', V400, () => json('POST', '/admin/users', {})),
  c('create user empty name', V400, () => json('POST', '/admin/users', { name: '' })),
  // Found by the fuzz test: PostgreSQL text cannot hold NUL, which was a 500.
  c('create user name with a NUL character', V400, () => json('POST', '/admin/users', { name: 'a\u0000b' })),
  c('create product name with a control character', V400, () => json('POST', '/admin/products', { name: 'tea\u0007', price: 1, stock: 1 })),
  c('create user blank name', V400, () => json('POST', '/admin/users', { name: '   ' })),
  c('create user name of 101 characters', V400, () => json('POST', '/admin/users', { name: 'n'.repeat(101) })),
  c('create user name a number', V400, () => json('POST', '/admin/users', { name: 42 })),
  c('create user name an array', V400, () => json('POST', '/admin/users', { name: ['a'] })),
  c('create user an unknown field', V400, () => json('POST', '/admin/users', { name: 'x', balance: 1_000_000 })),

  c('create product malformed JSON', V400, () => raw('POST', '/admin/products', '{"name":"x",')),
  c('create product price as a string', V400, () => json('POST', '/admin/products', { name: 'x', price: '100', stock: 1 })),
  c('create product price negative', V400, () => json('POST', '/admin/products', { name: 'x', price: -1, stock: 1 })),
  c('create product price 1.5', V400, () => json('POST', '/admin/products', { name: 'x', price: 1.5, stock: 1 })),
  c('create product price 2^53+1 raw', V400, () => raw('POST', '/admin/products', `{"name":"x","price":${HUGE_INT},"stock":1}`)),
  c('create product stock 1e309 raw', V400, () => raw('POST', '/admin/products', `{"name":"x","price":1,"stock":${INFINITE}}`)),
  c('create product stock negative', V400, () => json('POST', '/admin/products', { name: 'x', price: 1, stock: -1 })),
  c('create product missing stock', V400, () => json('POST', '/admin/products', { name: 'x', price: 1 })),
  c('create product empty name', V400, () => json('POST', '/admin/products', { name: '', price: 1, stock: 1 })),

  c('update product malformed JSON', V400, (w) => raw('PATCH', `/admin/products/${w.p1}`, '{')),
  c('update product nothing to change', V400, (w) => json('PATCH', `/admin/products/${w.p1}`, {})),
  c('update product price negative', V400, (w) => json('PATCH', `/admin/products/${w.p1}`, { price: -1 })),
  c('update product stock 1.5', V400, (w) => json('PATCH', `/admin/products/${w.p1}`, { stock: 1.5 })),
  c('update product stock as a string', V400, (w) => json('PATCH', `/admin/products/${w.p1}`, { stock: '7' })),
  c('update product price 1e309 raw', V400, (w) => raw('PATCH', `/admin/products/${w.p1}`, `{"price":${INFINITE}}`)),
  c('update product an unknown field', V400, (w) => json('PATCH', `/admin/products/${w.p1}`, { name: 'renamed' })),
  c('update product non-numeric id', V400, () => json('PATCH', '/admin/products/abc', { price: 1 })),
  c('update product overflowing id', V400, () => json('PATCH', '/admin/products/99999999999999999999', { price: 1 })),
  c('update product unknown', { status: 404, code: 'PRODUCT_NOT_FOUND' }, () => json('PATCH', `/admin/products/${UNKNOWN_ID}`, { price: 1 })),

  c('create coupon malformed JSON', V400, () => raw('POST', '/admin/coupons', '{')),
  c('create coupon an array body', V400, () => json('POST', '/admin/coupons', [coupon()])),
  c('create coupon unknown discountType', V400, () => json('POST', '/admin/coupons', coupon({ discountType: 'PERCENT' }))),
  c('create coupon discountValue 0', V400, () => json('POST', '/admin/coupons', coupon({ discountValue: 0 }))),
  c('create coupon discountValue 1.5', V400, () => json('POST', '/admin/coupons', coupon({ discountValue: 1.5 }))),
  c('create coupon RATE of 101 percent', V400, () => json('POST', '/admin/coupons', coupon({ discountType: 'RATE', discountValue: 101 }))),
  c('create coupon totalQuantity 0', V400, () => json('POST', '/admin/coupons', coupon({ totalQuantity: 0 }))),
  c('create coupon totalQuantity 2^53+1 raw', V400, () =>
    raw('POST', '/admin/coupons', `{"name":"c","discountType":"FIXED","discountValue":1,"totalQuantity":${HUGE_INT}}`),
  ),
  c('create coupon validDays 0', V400, () => json('POST', '/admin/coupons', coupon({ validDays: 0 }))),
  c('create coupon validDays 3651', V400, () => json('POST', '/admin/coupons', coupon({ validDays: 3651 }))),
  c('create coupon minOrderAmount negative', V400, () => json('POST', '/admin/coupons', coupon({ minOrderAmount: -1 }))),
  c('create coupon issueStartsAt not a time', V400, () => json('POST', '/admin/coupons', coupon({ issueStartsAt: 'tomorrow' }))),
  c('create coupon issueStartsAt a number', V400, () => json('POST', '/admin/coupons', coupon({ issueStartsAt: Date.now() }))),
  c('create coupon a window that ends before it starts', V400, () =>
    json('POST', '/admin/coupons', coupon({ issueStartsAt: '2030-01-02T00:00:00Z', issueEndsAt: '2030-01-01T00:00:00Z' })),
  ),

  c('grant malformed JSON', V400, (w) => raw('POST', `/admin/coupons/${w.openCoupon}/grant`, '{')),
  c('grant userId as a string', V400, (w) => json('POST', `/admin/coupons/${w.openCoupon}/grant`, { userId: String(w.a.userId) })),
  c('grant userId negative', V400, (w) => json('POST', `/admin/coupons/${w.openCoupon}/grant`, { userId: -1 })),
  c('grant non-numeric coupon', V400, (w) => json('POST', '/admin/coupons/abc/grant', { userId: w.a.userId })),
  c('grant overflowing coupon', V400, (w) => json('POST', '/admin/coupons/99999999999999999999/grant', { userId: w.a.userId })),
  c('grant an unknown coupon', { status: 404, code: 'COUPON_NOT_FOUND' }, (w) =>
    json('POST', `/admin/coupons/${UNKNOWN_ID}/grant`, { userId: w.a.userId }),
  ),
  c('grant to an unknown user', { status: 404, code: 'USER_NOT_FOUND' }, (w) =>
    json('POST', `/admin/coupons/${w.openCoupon}/grant`, { userId: UNKNOWN_ID }),
  ),
  c('grant a coupon already held', { status: 409, code: 'COUPON_ALREADY_ISSUED' }, (w) =>
    json('POST', `/admin/coupons/${w.heldCoupon}/grant`, { userId: w.a.userId }),
  ),
  c('grant an exhausted coupon', { status: 409, code: 'COUPON_EXHAUSTED' }, (w) =>
    json('POST', `/admin/coupons/${w.exhaustedCoupon}/grant`, { userId: w.a.userId }),
  ),

  c('events unknown status', V400, () => get('/admin/events?status=delivered')),
  c('events limit=0', V400, () => get('/admin/events?limit=0')),
  c('events limit=101', V400, () => get('/admin/events?limit=101')),
  c('events an unknown query parameter', V400, () => get('/admin/events?type=order.paid')),
  c('events garbage cursor', V400, () => get('/admin/events?cursor=garbage')),
  c('events a cursor whose id is not a uuid', V400, () => get(`/admin/events?cursor=${b64url([new Date().toISOString(), '-'.repeat(36)])}`)),
  c('events a cursor with a date out of range', V400, () => get(`/admin/events?cursor=${b64url(['-271821-04-20T00:00:00.000Z', randomUUID()])}`)),
  c('events a cursor with a year past 9999', V400, () => get(`/admin/events?cursor=${b64url(['+275760-09-13T00:00:00.000Z', randomUUID()])}`)),
  // An event id is opaque too: one that names no event is 404, whatever its shape.
  c('redeliver not a uuid', { status: 404, code: 'EVENT_NOT_FOUND' }, () => raw('POST', '/admin/events/not-a-uuid/redeliver', '{}')),
  c('redeliver 36 dashes', { status: 404, code: 'EVENT_NOT_FOUND' }, () => raw('POST', `/admin/events/${'-'.repeat(36)}/redeliver`, '{}')),
  c("redeliver the event's id in upper case", { status: 404, code: 'EVENT_NOT_FOUND' }, (w) =>
    raw('POST', `/admin/events/${w.eventId.toUpperCase()}/redeliver`, '{}'),
  ),
  c('redeliver a text/plain body', U415, (w) => raw('POST', `/admin/events/${w.eventId}/redeliver`, '{}', 'admin', { 'content-type': 'text/plain' })),
  c('redeliver malformed JSON', V400, (w) => raw('POST', `/admin/events/${w.eventId}/redeliver`, '{')),
  c('redeliver an unknown event', { status: 404, code: 'EVENT_NOT_FOUND' }, () => raw('POST', `/admin/events/${randomUUID()}/redeliver`, '{}')),
];

/** bodyLimit is 64 KiB (app.ts); a body one byte over it is refused before it is parsed. */
const BODY_LIMIT = 64 * 1024;
const oversized = (prefix: string, suffix: string) => prefix + 'x'.repeat(BODY_LIMIT + 1 - prefix.length - suffix.length) + suffix;
const T413 = { status: 413, code: 'PAYLOAD_TOO_LARGE' } as const;
const sizeCases: Case[] = [
  c('POST /orders a body over the limit', T413, (w) => raw('POST', '/orders', oversized(`{"userId":${w.a.userId},"junk":"`, '"}'), 'a')),
  c('POST /orders a body over the limit without a token', T413, (w) =>
    raw('POST', '/orders', oversized(`{"userId":${w.a.userId},"junk":"`, '"}'), 'none'),
  ),
  c('charge a body over the limit', T413, (w) => raw('POST', `/users/${w.a.userId}/balance/charge`, oversized('{"amount":1,"x":"', '"}'), 'a')),
  c('issue a body over the limit', T413, (w) => raw('POST', `/coupons/${w.openCoupon}/issue`, oversized('{"x":"', '"}'), 'a')),
  c('create user a body over the limit', T413, () => raw('POST', '/admin/users', oversized('{"name":"', '"}'))),
  c('create product a body over the limit', T413, () => raw('POST', '/admin/products', oversized('{"name":"', '"}'))),
  c('update product a body over the limit', T413, (w) => raw('PATCH', `/admin/products/${w.p1}`, oversized('{"x":"', '"}'))),
  c('create coupon a body over the limit', T413, () => raw('POST', '/admin/coupons', oversized('{"name":"', '"}'))),
  c('grant a body over the limit', T413, (w) => raw('POST', `/admin/coupons/${w.openCoupon}/grant`, oversized('{"x":"', '"}'))),
  c('redeliver a body over the limit', T413, (w) => raw('POST', `/admin/events/${w.eventId}/redeliver`, oversized('{"x":"', '"}'))),
  c('an order of 101 items within the body limit is still refused for its length', V400, (w) =>
    json('POST', '/orders', order(w, { items: manyItems(101, 1_000) }), 'a'),
  ),
];

const routingCases: Case[] = [
  c('an unknown endpoint', { status: 404, code: 'NOT_FOUND' }, () => get('/nope', 'none')),
  c('an unknown method on a known path', { status: 404, code: 'NOT_FOUND' }, (w) => client.request('DELETE', `/orders/${w.orderId}`)),
];

// ---------------------------------------------------------------------------------------------

function expectProblem(res: Reply, expected: { status: number; code: string }) {
  const summary = `${res.status} ${JSON.stringify(res.body)}`.slice(0, 500);
  expect([res.status, res.body?.code], summary).toEqual([expected.status, expected.code]);
  expect(res.headers.get('content-type') ?? '', summary).toMatch(/^application\/problem\+json/);
  expect(res.body, summary).toEqual({
    type: expect.stringMatching(/^\/problems\/[a-z-]+$/),
    title: expect.stringMatching(/\S/),
    status: res.status,
    detail: expect.stringMatching(/\S/),
    code: expected.code,
  });
  expect(res.body.type).toBe(`/problems/${expected.code.toLowerCase().replaceAll('_', '-')}`);
  // Clear, but no internals: no stack trace and no SQL.
  expect(res.body.detail, summary).not.toMatch(/\bat .+:\d+:\d+|\.ts:\d+|\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET)\b/);
}

const groups: ReadonlyArray<[string, Case[]]> = [
  ['authentication and authorization', authCases],
  ['POST /orders', ordersCases],
  ['order reads', orderReadCases],
  ['balance', balanceCases],
  ['products', productCases],
  ['coupons', couponCases],
  ['admin', adminCases],
  ['body size', sizeCases],
  ['routing', routingCases],
];

for (const [group, cases] of groups) {
  describe(group, () => {
    test.each(cases.map((x) => [x.name, x] as const))('%s', async (_name, x) => {
      expectProblem(await x.send(w), x);
    });
  });
}

test('the bad requests above changed nothing at all', async () => {
  // The fingerprint covers the arranged rows, so an empty table list cannot pass by accident.
  expect(Object.keys(before)).toEqual(
    expect.arrayContaining([
      'balance_ledger',
      'coupons',
      'idempotency_keys',
      'order_items',
      'orders',
      'outbox_events',
      'products',
      'user_coupons',
      'users',
    ]),
  );
  expect(before.users!.rows).toBe(2);
  expect(before.orders!.rows).toBe(1);
  expect(before.outbox_events!.rows).toBe(1);
  expect(await fingerprint(tdb)).toEqual(before);

  // Read back through the API as well: the arranged state is what it was.
  expect((await client.get(`/users/${w.a.userId}/balance`)).body).toEqual({ userId: w.a.userId, balance: 100_000 - 1_000 });
  expect((await client.get(`/users/${w.b.userId}/balance`)).body).toEqual({ userId: w.b.userId, balance: 50_000 });
  expect((await client.get(`/products/${w.p1}`)).body.stock).toBe(9);
  expect((await client.get(`/products/${w.p2}`)).body.stock).toBe(5);
  expect((await client.get(`/users/${w.a.userId}/coupons`)).body.items).toMatchObject([{ couponId: w.heldCoupon, status: 'AVAILABLE' }]);
  expect((await client.get(`/users/${w.a.userId}/orders`)).body.items).toHaveLength(1);
  await assertInvariants(tdb);
});
