import { createServer } from 'node:net';
import { afterAll, afterEach, expect, test } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NATS_STREAM, NATS_SUBJECTS } from '@shop/adapters-dataplatform';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { Client, secretBytes, startTestApp, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';
import { NATS_URL, natsForTests } from '../../../test/support/nats.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';
import { Receiver, type ReceivedEvent } from '../../../test/support/receiver.ts';
import { FAST_RETRIES, RELAY_ENV } from '../../../test/support/relay-env.ts';

/**
 * The contract's delivery order for cancellations (ADR 0008): per order, order.cancelled never
 * reaches the data platform before that order's order.paid was accepted (answered 2xx), across
 * 503s, an outage, NATS and a SIGKILL; and an order waiting for its order.paid holds back no
 * other order. Real PostgreSQL, a real HTTP receiver, real JetStream, real API processes.
 *
 * Each test has its own database: a relay of another test's service must not deliver its events.
 */
const nc = await natsForTests();
afterAll(async () => {
  await nc?.close();
});

type Buyer = { userId: number; token: string };
type EventRow = {
  event_id: string;
  event_type: string;
  aggregate_id: string;
  attempts: number;
  last_error: string | null;
  delivered_at: Date | null;
};

/** What a test started, undone after it (last first), whatever happened. */
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const undo of cleanups.splice(0).reverse()) await undo().catch((err) => errors.push(err));
  if (errors.length > 0) throw errors[0];
});
const once = <T>(f: () => Promise<T>) => {
  let done: Promise<T> | null = null;
  return () => (done ??= f());
};

async function database(): Promise<TestDatabase> {
  const tdb = await createTestDatabase();
  cleanups.push(() => tdb.drop());
  return tdb;
}

/** A receiver that also keeps every request it gets, in arrival order. */
async function receiver(): Promise<Receiver> {
  const r = await new Receiver().start();
  r.arrivals = [];
  cleanups.push(() => r.stop());
  return r;
}

async function inProcess(tdb: TestDatabase, env: Record<string, string>): Promise<TestApp> {
  const app = await startTestApp(tdb.url, env);
  const close = once(() => app.close());
  cleanups.push(close);
  return { ...app, close };
}

async function ownProcess(tdb: TestDatabase, env: Record<string, string>): Promise<{ proc: ApiProcess; client: Client }> {
  const proc = await startApiProcess(tdb.url, env);
  cleanups.push(() => proc.stop('SIGKILL'));
  return { proc, client: new Client(proc.url, await signToken(secretBytes, { admin: true })) };
}

/** Products made in a test with their initial stock: the stock invariant covers them. */
async function product(client: Client, initialStock: Map<number, number>, price = 100, stock = 1_000): Promise<number> {
  const id = await client.createProduct(price, stock);
  initialStock.set(id, stock);
  return id;
}

const buyers = (client: Client, n: number): Promise<Buyer[]> => Promise.all(Array.from({ length: n }, () => client.createUser(100_000)));

async function place(client: Client, buyer: Buyer, productId: number): Promise<any> {
  const placed = await client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 2 }] }, { token: buyer.token });
  expect(placed.status, JSON.stringify(placed.body)).toBe(201);
  return placed.body;
}

async function cancel(client: Client, buyer: Buyer, orderId: string): Promise<any> {
  // The contract's request: no body; the owner's token.
  const cancelled = await client.request('POST', `/orders/${orderId}/cancel`, undefined, { token: buyer.token });
  expect([cancelled.status, cancelled.body?.status], JSON.stringify(cancelled.body)).toEqual([200, 'CANCELLED']);
  return cancelled.body;
}

/** Places an order and cancels it at once (after refunding one of its two units, with `refundFirst`); returns its orderId. */
async function placeAndCancel(client: Client, buyer: Buyer, productId: number, refundFirst = false): Promise<string> {
  const { orderId } = await place(client, buyer, productId);
  if (refundFirst) {
    const refunded = await client.post(`/orders/${orderId}/refunds`, { items: [{ productId, quantity: 1 }] }, { token: buyer.token });
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(201);
  }
  await cancel(client, buyer, orderId);
  return orderId;
}

const eventsOf = (tdb: TestDatabase, orderIds: string[]) =>
  tdb.query<EventRow>(
    `SELECT event_id::text, event_type, aggregate_id, attempts, last_error, delivered_at
     FROM outbox_events WHERE aggregate_id = ANY($1::text[]) ORDER BY seq`,
    [orderIds],
  );

const undelivered = async (tdb: TestDatabase) =>
  (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL'))[0]!.n;

const isEvent = (e: ReceivedEvent, orderId: string, type: string) => e.body?.type === type && e.body?.data?.orderId === orderId;
const acceptedOf = (r: Receiver, orderId: string, type: string) => r.accepted.filter((e) => isEvent(e, orderId, type));
const arrivalsOf = (r: Receiver, orderId: string, type: string) => r.arrivals!.filter((e) => isEvent(e, orderId, type));
const bothAccepted = (r: Receiver, orderIds: string[]) =>
  orderIds.every((id) => acceptedOf(r, id, 'order.paid').length > 0 && acceptedOf(r, id, 'order.cancelled').length > 0);

/**
 * Waits until `rows` (re-read each time) show every order.paid of `orderIds` tried at least twice
 * more than now: the second of those claims began after this call, so after every cancellation
 * recorded before it. A relay that claimed order.cancelled events regardless of their order.paid
 * would have tried them by then.
 */
async function untilPaidRetriedTwice(tdb: TestDatabase, orderIds: string[], what: string): Promise<EventRow[]> {
  const paid = (rows: EventRow[]) => rows.filter((e) => e.event_type === 'order.paid');
  const before = new Map(paid(await eventsOf(tdb, orderIds)).map((e) => [e.event_id, e.attempts]));
  let rows: EventRow[] = [];
  await eventually(
    async () => {
      rows = await eventsOf(tdb, orderIds);
      return paid(rows).every((e) => e.last_error !== null && e.attempts >= before.get(e.event_id)! + 2);
    },
    what,
    30_000,
  );
  return rows;
}

/**
 * The contract, from what the platform saw, for each order: exactly one order.paid and one
 * order.cancelled eventId accepted, the ones recorded for it, each sent with its eventId as the
 * Idempotency-Key; and the first 2xx answer to its order.paid came before its order.cancelled
 * reached the platform at all (an acceptance and an arrival, on the receiver's one counter).
 */
async function assertDeliveredInOrder(tdb: TestDatabase, r: Receiver, orderIds: string[]): Promise<void> {
  const recorded = await eventsOf(tdb, orderIds);
  for (const orderId of orderIds) {
    for (const type of ['order.paid', 'order.cancelled']) {
      const ids = recorded.filter((e) => e.aggregate_id === orderId && e.event_type === type).map((e) => e.event_id);
      expect(ids, `${type} events recorded for order ${orderId}`).toHaveLength(1);
      const accepted = acceptedOf(r, orderId, type);
      expect([...new Set(accepted.map((e) => e.body.eventId))], `${type} eventIds accepted for order ${orderId}`).toEqual(ids);
      for (const e of accepted) expect(e.idempotencyKey).toBe(e.body.eventId);
    }
    const paidAccepted = acceptedOf(r, orderId, 'order.paid')[0]!;
    const cancelledArrived = arrivalsOf(r, orderId, 'order.cancelled')[0]!;
    expect(
      paidAccepted.at,
      `order ${orderId}: its order.cancelled reached the platform (#${cancelledArrived.at}) before its order.paid was accepted (#${paidAccepted.at})`,
    ).toBeLessThan(cancelledArrived.at);
  }
  // Nothing invented: every accepted event of these orders is one recorded.
  const known = new Set(recorded.map((e) => e.event_id));
  const ours = r.accepted.filter((e) => orderIds.includes(e.body?.data?.orderId));
  expect(ours.filter((e) => !known.has(e.body.eventId))).toEqual([]);
}

/** The end of every test: nothing left to deliver, and the service's invariants hold. */
async function assertDrained(tdb: TestDatabase, initialStock: Map<number, number>): Promise<void> {
  await eventually(async () => (await undelivered(tdb)) === 0, 'every event marked delivered', 60_000);
  await assertInvariants(tdb, initialStock);
}

test('HTTP 503s: order.cancelled waits for its order.paid to be accepted; another user\'s order does not wait for them', async () => {
  const tdb = await database();
  const platform = await receiver();
  const { client } = await inProcess(tdb, { DATA_PLATFORM_URL: platform.url, ...FAST_RETRIES });
  const stock = new Map<number, number>();
  const productId = await product(client, stock);
  const [a, b, c, other] = await buyers(client, 4);

  // The platform answers 503 to every delivery of a, b and c's orders until they are all placed and
  // cancelled (each order.paid is still failing when its order is cancelled), then to the next 15
  // deliveries whoever they are for, then accepts everything. The other user's deliveries are
  // accepted throughout.
  let failingAll = true;
  let failuresAfter = 15;
  platform.modeFor = (body) => {
    if (failingAll) return body.data.userId === other!.userId ? 'ok' : 'fail';
    return failuresAfter-- > 0 ? 'fail' : 'ok';
  };

  const orders: string[] = [];
  for (let i = 0; i < 10; i++) orders.push(await placeAndCancel(client, [a, b, c][i % 3]!, productId));

  // Another user's order, placed and cancelled while those ten are failing: both its events are
  // accepted without waiting for theirs.
  const otherOrder = await placeAndCancel(client, other!, productId);
  await platform.until(() => bothAccepted(platform, [otherOrder]), "the other user's order.paid and order.cancelled accepted");
  await platform.until(() => orders.every((id) => arrivalsOf(platform, id, 'order.paid').length > 0), 'every order.paid refused at least once');
  expect(platform.accepted.filter((e) => orders.includes(e.body.data.orderId)), 'accepted events of the failing orders').toEqual([]);
  const waiting = await eventsOf(tdb, orders);
  expect(waiting.filter((e) => e.delivered_at !== null), 'delivered events of the failing orders').toEqual([]);
  // Their order.cancelled was recorded before the other order's, and the relay claimed since (it
  // delivered the other order's): not one was tried, let alone sent.
  expect(waiting.filter((e) => e.event_type === 'order.cancelled' && e.attempts > 0), 'order.cancelled events tried').toEqual([]);
  expect(orders.flatMap((id) => arrivalsOf(platform, id, 'order.cancelled')), 'order.cancelled events sent').toEqual([]);

  failingAll = false;
  await platform.until(() => bothAccepted(platform, orders), 'every order.paid and order.cancelled accepted after the 503s', 60_000);
  // The later order's events overtook every earlier order's.
  const otherCancelled = acceptedOf(platform, otherOrder, 'order.cancelled')[0]!;
  for (const id of orders) expect(acceptedOf(platform, id, 'order.paid')[0]!.at).toBeGreaterThan(otherCancelled.at);
  expect(failuresAfter, 'the 15 failures after the orders were all answered').toBeLessThan(0);
  await assertDeliveredInOrder(tdb, platform, [...orders, otherOrder]);
  await assertDrained(tdb, stock);
});

test('platform down (connection refused) while orders are placed and cancelled, then up: each order.paid accepted before its order.cancelled', async () => {
  const tdb = await database();
  const platform = await receiver();
  const { client } = await inProcess(tdb, { DATA_PLATFORM_URL: platform.url, ...FAST_RETRIES });
  const stock = new Map<number, number>();
  const productId = await product(client, stock);
  const people = await buyers(client, 4);

  await platform.stop();
  const orders: string[] = [];
  for (let i = 0; i < 8; i++) orders.push(await placeAndCancel(client, people[i % people.length]!, productId));
  const rows = await untilPaidRetriedTwice(tdb, orders, 'every order.paid refused twice more after the cancellations');
  for (const e of rows.filter((e) => e.event_type === 'order.paid')) expect(e.last_error).toMatch(/ECONNREFUSED|connect/i);
  expect(
    rows.filter((e) => e.event_type === 'order.cancelled').map((e) => [e.attempts, e.last_error, e.delivered_at]),
    'order.cancelled events never tried while their order.paid is refused',
  ).toEqual(orders.map(() => [0, null, null]));
  expect(platform.arrivals).toEqual([]);

  await platform.start();
  await platform.until(() => bothAccepted(platform, orders), 'every event accepted once the platform is back', 60_000);
  await assertDeliveredInOrder(tdb, platform, orders);
  await assertDrained(tdb, stock);
});

test.skipIf(!nc)('NATS JetStream: in the stream, each order\'s events in the order recorded (paid, refunded, cancelled), after an outage and live', async () => {
  const jsm: JetStreamManager = await jetstreamManager(nc!);
  const lastSeq = async () => {
    try {
      return (await jsm.streams.info(NATS_STREAM)).state.last_seq;
    } catch {
      return 0; // the publisher creates the stream on first use
    }
  };
  const tdb = await database();
  const stock = new Map<number, number>();

  // First a service whose NATS does not answer (nothing listens on that port): orders are placed
  // and cancelled, every order.paid fails, no order.cancelled is tried.
  const deadPort = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const down = await inProcess(tdb, { ...FAST_RETRIES, DATA_PLATFORM_URL: `nats://127.0.0.1:${deadPort}` });
  const productId = await product(down.client, stock);
  const people = await buyers(down.client, 3);
  const backlog: string[] = [];
  for (let i = 0; i < 6; i++) backlog.push(await placeAndCancel(down.client, people[i % people.length]!, productId, i % 2 === 1));
  const rows = await untilPaidRetriedTwice(tdb, backlog, 'every order.paid failed twice more after the cancellations');
  expect(rows.filter((e) => e.event_type !== 'order.paid' && e.attempts > 0), 'order.refunded and order.cancelled events tried').toEqual([]);
  await down.close();
  // As backoff has it for an event that failed more often: each order.paid is due again later
  // than its order.cancelled, which is due now.
  await tdb.query(
    `UPDATE outbox_events SET next_attempt_at = now() + interval '1 second'
     WHERE event_type = 'order.paid' AND delivered_at IS NULL AND aggregate_id = ANY($1::text[])`,
    [backlog],
  );

  // Then the same database with NATS reachable: the backlog drains, and more orders are placed and
  // cancelled at once while it does.
  const from = await lastSeq();
  const up = await inProcess(tdb, { ...FAST_RETRIES, DATA_PLATFORM_TIMEOUT_MS: '5000', DATA_PLATFORM_URL: NATS_URL });
  const live: string[] = [];
  for (let i = 0; i < 6; i++) live.push(await placeAndCancel(up.client, people[i % people.length]!, productId, i % 2 === 1));
  await eventually(async () => (await undelivered(tdb)) === 0, 'every event published', 60_000);
  const to = await lastSeq();

  const orders = [...backlog, ...live];
  const recorded = await eventsOf(tdb, orders);
  const byId = new Map(recorded.map((e) => [e.event_id, e]));
  const messages: Array<{ seq: number; id: string; subject: string; body: any }> = [];
  for (let seq = from + 1; seq <= to; seq++) {
    const m = await jsm.streams.getMessage(NATS_STREAM, { seq });
    const id = m?.header?.get('Nats-Msg-Id');
    if (m && id && byId.has(id)) messages.push({ seq, id, subject: m.subject, body: m.json<any>() });
  }
  expect(messages.map((m) => m.id).sort(), 'every recorded event stored once').toEqual(recorded.map((e) => e.event_id).sort());
  for (const m of messages) {
    const e = byId.get(m.id)!;
    expect(m.subject).toBe(NATS_SUBJECTS[e.event_type as keyof typeof NATS_SUBJECTS]);
    expect(m.body).toMatchObject({ eventId: m.id, type: e.event_type, data: { orderId: e.aggregate_id } });
  }
  expect(recorded.filter((e) => e.event_type === 'order.refunded')).toHaveLength(6);
  for (const orderId of orders) {
    // `messages` is in stream order, `recorded` in recording order: per order, the same ids.
    const inStream = messages.filter((m) => m.body.data.orderId === orderId).map((m) => m.id);
    expect(inStream, `order ${orderId}: its events in the stream vs as recorded`).toEqual(recorded.filter((e) => e.aggregate_id === orderId).map((e) => e.event_id));
  }
  await assertDrained(tdb, stock);
});

test('SIGKILL between an order\'s two deliveries, then a new process on the same database: nothing lost, nothing reordered', async () => {
  const tdb = await database();
  const platform = await receiver();
  const env = { DATA_PLATFORM_URL: platform.url, ...RELAY_ENV };
  const first = await ownProcess(tdb, env);
  const stock = new Map<number, number>();
  const productId = await product(first.client, stock);
  const [a1, a2, h1, h2] = await buyers(first.client, 4);

  // Until the kill, the platform refuses every order.cancelled, accepts a1 and a2's order.paid, and
  // never answers h1 and h2's (in flight, or timed out and retried, when the process dies).
  const hangs = new Set([h1!.userId, h2!.userId]);
  let healed = false;
  platform.modeFor = (body) => {
    if (healed) return 'ok';
    if (body.type === 'order.cancelled') return 'fail';
    return hangs.has(body.data.userId) ? 'hang' : 'ok';
  };

  // Accepted: order.paid accepted and marked, then the order cancelled; its order.cancelled is refused.
  const accepted: string[] = [];
  for (let i = 0; i < 4; i++) accepted.push((await place(first.client, [a1, a2][i % 2]!, productId)).orderId);
  await eventually(async () => (await eventsOf(tdb, accepted)).every((e) => e.delivered_at !== null), 'order.paid accepted and marked delivered');
  for (let i = 0; i < 4; i++) await cancel(first.client, [a1, a2][i % 2]!, accepted[i]!);
  await platform.until(() => accepted.every((id) => arrivalsOf(platform, id, 'order.cancelled').length > 0), 'each order.cancelled refused');

  // Unanswered: placed and cancelled at once; order.paid never answered, order.cancelled never tried.
  const unanswered: string[] = [];
  for (let i = 0; i < 4; i++) unanswered.push(await placeAndCancel(first.client, [h1, h2][i % 2]!, productId));
  const rows = await untilPaidRetriedTwice(tdb, unanswered, 'each unanswered order.paid tried twice more after the cancellations');
  expect(rows.filter((e) => e.delivered_at !== null || (e.event_type === 'order.cancelled' && e.attempts > 0))).toEqual([]);
  expect(platform.accepted.filter((e) => e.body.type === 'order.cancelled'), 'order.cancelled accepted before the kill').toEqual([]);

  await first.proc.stop('SIGKILL');
  healed = true;
  const second = await ownProcess(tdb, env);
  const orders = [...accepted, ...unanswered];
  await platform.until(() => bothAccepted(platform, orders), 'every event accepted from the new process', 60_000);

  // Nothing lost: every stored order is one of those answered, and each has both events accepted.
  const stored = (await tdb.query<{ id: string }>('SELECT id::text FROM orders')).map((o) => o.id);
  expect(stored.sort()).toEqual([...orders].sort());
  await assertDeliveredInOrder(tdb, platform, orders);
  // An order.paid sent again after the kill (the platform may have stored it; its answer was lost)
  // is sent before its order.cancelled, never after (ADR 0008).
  for (const id of orders) {
    const firstCancelled = arrivalsOf(platform, id, 'order.cancelled')[0]!;
    expect(arrivalsOf(platform, id, 'order.paid').filter((e) => e.at > firstCancelled.at), `order.paid of ${id} sent after its order.cancelled`).toEqual([]);
  }
  expect(await second.proc.stop('SIGTERM')).toBe(0);
  await assertDrained(tdb, stock);
});

test('partial refunds: platform down, the process SIGKILLed and replaced: each order\'s paid → refunded → refunded (→ cancelled) in that order, once each', async () => {
  const tdb = await database();
  const platform = await receiver();
  const env = { DATA_PLATFORM_URL: platform.url, ...RELAY_ENV };
  const first = await ownProcess(tdb, env);
  const stock = new Map<number, number>();
  const [p1, p2] = [await product(first.client, stock), await product(first.client, stock)];
  const people = await buyers(first.client, 3);

  await platform.stop();
  const orders: string[] = [];
  for (let i = 0; i < 6; i++) {
    const b = people[i % people.length]!;
    const items = [{ productId: p1, quantity: 2 }, { productId: p2, quantity: 1 }];
    const placed = await first.client.post('/orders', { userId: b.userId, items }, { token: b.token });
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    const orderId: string = placed.body.orderId;
    for (const productId of [p1, p2]) {
      const refunded = await first.client.post(`/orders/${orderId}/refunds`, { items: [{ productId, quantity: 1 }] }, { token: b.token });
      expect(refunded.status, JSON.stringify(refunded.body)).toBe(201);
    }
    // Half end cancelled (the rest given back), half stay partly refunded.
    if (i % 2 === 0) await cancel(first.client, b, orderId);
    orders.push(orderId);
  }
  const rows = await untilPaidRetriedTwice(tdb, orders, 'every order.paid refused twice more after the refunds');
  expect(rows.filter((e) => e.event_type !== 'order.paid' && e.attempts > 0), 'later events tried while their order.paid is refused').toEqual([]);

  await first.proc.stop('SIGKILL');
  await platform.start();
  const second = await ownProcess(tdb, env);
  const recorded = await eventsOf(tdb, orders); // in recording order (seq)
  expect(recorded).toHaveLength(6 * 3 + 3);
  const acceptedIds = () => new Set(platform.accepted.map((e) => e.body?.eventId));
  await platform.until(() => recorded.every((e) => acceptedIds().has(e.event_id)), 'every event accepted from the new process', 60_000);

  for (const orderId of orders) {
    const mine = recorded.filter((e) => e.aggregate_id === orderId);
    expect(mine.map((e) => e.event_type)).toEqual(
      ['order.paid', 'order.refunded', 'order.refunded', ...(orders.indexOf(orderId) % 2 === 0 ? ['order.cancelled'] : [])],
    );
    // Each event's first acceptance came before the next one reached the platform at all.
    for (let k = 1; k < mine.length; k++) {
      const accepted = platform.accepted.find((e) => e.body?.eventId === mine[k - 1]!.event_id)!;
      const next = platform.arrivals!.find((e) => e.body?.eventId === mine[k]!.event_id)!;
      expect(accepted.at, `order ${orderId}: ${mine[k]!.event_type} #${k} sent before the event before it was accepted`).toBeLessThan(next.at);
    }
  }
  // Once each as a logical event: nothing accepted for these orders that was not recorded.
  const known = new Set(recorded.map((e) => e.event_id));
  expect(platform.accepted.filter((e) => orders.includes(e.body?.data?.orderId) && !known.has(e.body.eventId))).toEqual([]);
  expect(await second.proc.stop('SIGTERM')).toBe(0);
  await assertDrained(tdb, stock);
});

test('GET /admin/events: a failing order.paid under status=failed, its waiting order.cancelled under pending, paged by cursor', async () => {
  const tdb = await database();
  const platform = await receiver();
  const { client } = await inProcess(tdb, { DATA_PLATFORM_URL: platform.url, ...FAST_RETRIES });
  const stock = new Map<number, number>();
  const productId = await product(client, stock);
  const people = await buyers(client, 3);

  platform.mode = 'fail';
  const placed: any[] = [];
  const cancelled: any[] = [];
  for (const buyer of people) {
    placed.push(await place(client, buyer, productId));
    cancelled.push(await cancel(client, buyer, placed[placed.length - 1].orderId));
  }
  const orders = placed.map((p) => p.orderId as string);
  await eventually(
    async () => (await eventsOf(tdb, orders)).filter((e) => e.event_type === 'order.paid' && e.last_error !== null).length === 3,
    'every order.paid failed once',
  );

  const failed = await client.get('/admin/events?status=failed&limit=100');
  expect(failed.status).toBe(200);
  expect(failed.body.items.map((i: any) => [i.type, i.aggregateId]).sort()).toEqual(orders.map((id) => ['order.paid', id]).sort());
  for (const item of failed.body.items) {
    expect(item).toMatchObject({ lastError: expect.stringMatching(/503/), deliveredAt: null, payload: { eventId: item.eventId, type: 'order.paid' } });
    expect(item.attempts).toBeGreaterThanOrEqual(1);
  }

  // Pending, one per page: the order.cancelled events, never tried, each carrying the contract's body.
  const pending: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await client.get(`/admin/events?status=pending&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(page.status).toBe(200);
    expect(page.body.items.length).toBeLessThanOrEqual(1);
    pending.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor !== null);
  expect(pending.map((i) => [i.type, i.aggregateId]).sort()).toEqual(orders.map((id) => ['order.cancelled', id]).sort());
  for (const item of pending) {
    const p = placed.find((o) => o.orderId === item.aggregateId);
    const c = cancelled.find((o) => o.orderId === item.aggregateId);
    expect(item).toMatchObject({ attempts: 0, lastError: null, deliveredAt: null });
    expect(item.payload).toEqual({
      eventId: item.eventId,
      type: 'order.cancelled',
      occurredAt: c.cancelledAt,
      data: {
        orderId: p.orderId,
        userId: p.userId,
        refundedAmount: p.paidAmount,
        items: p.items.map((l: any) => ({ productId: l.productId, quantity: l.quantity })),
        couponId: p.couponId,
        cancelledAt: c.cancelledAt,
      },
    });
  }
  // Pending is the default.
  const byDefault = await client.get('/admin/events?limit=100');
  expect(byDefault.body.items.map((i: any) => i.eventId).sort()).toEqual(pending.map((i) => i.eventId).sort());
  expect((await client.get('/admin/events?status=delivered')).status).toBe(400);

  platform.mode = 'ok';
  await platform.until(() => bothAccepted(platform, orders), 'every event accepted once the platform answers');
  await assertDeliveredInOrder(tdb, platform, orders);
  await assertDrained(tdb, stock);
  for (const status of ['pending', 'failed']) expect((await client.get(`/admin/events?status=${status}`)).body.items).toEqual([]);
});
