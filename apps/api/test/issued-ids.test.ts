import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { fingerprint } from '../../../test/support/fingerprint.ts';
import { startTestApp, type Client, type Reply, type TestApp } from '../../../test/support/http.ts';

/**
 * Contract v1.2: an order id names an order only as the exact string the service issued, on every
 * route alike; event ids likewise. PostgreSQL would read many other strings as the same uuid
 * (upper case, braces, no dashes, a urn), so a route that let one through would act on an order
 * the others call not found. Each spelling below must be 404 problem+json and write nothing.
 *
 * The relay and the sales rollup are off, so only the requests can write (see fingerprint).
 */
let tdb: TestDatabase;
let app: TestApp;
let client: Client;
let owner: { userId: number; token: string };
let orderId: string;
let eventId: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off', TOP_SELLERS_REFRESH_MS: '3600000' });
  client = app.client;
  owner = await client.createUser(10_000);
  const productId = await client.createProduct(1_000, 5);
  const placed = await client.post('/orders', { userId: owner.userId, items: [{ productId, quantity: 2 }] }, { token: owner.token });
  expect(placed.status, JSON.stringify(placed.body)).toBe(201);
  orderId = placed.body.orderId;
  [{ event_id: eventId }] = (await tdb.query<{ event_id: string }>('SELECT event_id FROM outbox_events WHERE aggregate_id = $1', [orderId])) as [
    { event_id: string },
  ];
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

/** Other spellings of `id`: each one PostgreSQL's uuid input would accept, then two it would not. */
const otherSpellings = (id: string): Array<[string, string]> => {
  const letter = id.search(/[a-f]/);
  return [
    ['upper case', id.toUpperCase()],
    ['one letter in upper case', id.slice(0, letter) + id[letter]!.toUpperCase() + id.slice(letter + 1)],
    ['in braces', `{${id}}`],
    ['without dashes', id.replaceAll('-', '')],
    ['as a urn', `urn:uuid:${id}`],
    ['after a space', ` ${id}`],
    ['before a space', `${id} `],
    ['garbage', 'not-an-id'],
    ['36 dashes', '-'.repeat(36)],
  ];
};

type Send = (id: string, token: string) => Promise<Reply>;
const getOrder: Send = (id, token) => client.get(`/orders/${encodeURIComponent(id)}`, { token });
const cancel =
  (headers: Record<string, string> = {}): Send =>
  (id, token) =>
    client.request('POST', `/orders/${encodeURIComponent(id)}/cancel`, undefined, { token, headers });
const redeliver: Send = (id, token) => client.request('POST', `/admin/events/${encodeURIComponent(id)}/redeliver`, undefined, { token });

const routes: ReadonlyArray<{ route: string; who: 'owner' | 'admin'; send: Send; id: () => string; code: string }> = [
  { route: 'GET /orders/{orderId}', who: 'owner', send: getOrder, id: () => orderId, code: 'ORDER_NOT_FOUND' },
  { route: 'GET /orders/{orderId}', who: 'admin', send: getOrder, id: () => orderId, code: 'ORDER_NOT_FOUND' },
  { route: 'POST /orders/{orderId}/cancel', who: 'owner', send: cancel(), id: () => orderId, code: 'ORDER_NOT_FOUND' },
  { route: 'POST /orders/{orderId}/cancel', who: 'admin', send: cancel(), id: () => orderId, code: 'ORDER_NOT_FOUND' },
  {
    route: 'POST /orders/{orderId}/cancel with an Idempotency-Key',
    who: 'owner',
    send: cancel({ 'idempotency-key': 'spelling' }),
    id: () => orderId,
    code: 'ORDER_NOT_FOUND',
  },
  { route: 'POST /admin/events/{eventId}/redeliver', who: 'admin', send: redeliver, id: () => eventId, code: 'EVENT_NOT_FOUND' },
];

describe.each(routes)('$route ($who token): another spelling of an existing id', ({ who, send, id, code }) => {
  test('names nothing: 404 problem+json, nothing written', async () => {
    const token = who === 'owner' ? owner.token : client.adminToken;
    const spellings = otherSpellings(id());
    // The arranged id must have a letter, or "upper case" would be the id itself.
    expect(spellings[0]![1]).not.toBe(id());
    const before = await fingerprint(tdb);
    for (const [name, spelling] of spellings) {
      const res = await send(spelling, token);
      expect([res.status, res.body?.code], `${name}: ${JSON.stringify(res.body)}`).toEqual([404, code]);
      expect(res.headers.get('content-type'), name).toMatch(/^application\/problem\+json/);
      expect(await fingerprint(tdb), `${name} wrote something`).toEqual(before);
    }
  });
});

test('the exact id names them on every route: the spellings above were refused for their spelling alone', async () => {
  expect((await getOrder(orderId, owner.token)).status).toBe(200);
  expect((await redeliver(eventId, client.adminToken)).status).toBe(202);
  const cancelled = await cancel()(orderId, owner.token);
  expect([cancelled.status, cancelled.body?.status]).toEqual([200, 'CANCELLED']);
});
