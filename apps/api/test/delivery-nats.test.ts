import { afterAll, beforeAll, expect, test } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NATS_STREAM } from '@shop/adapters-dataplatform';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { NATS_URL, natsForTests } from '../../../test/support/nats.ts';

const nc = await natsForTests();
let tdb: TestDatabase;
let app: TestApp;
let jsm: JetStreamManager;

beforeAll(async () => {
  if (!nc) return;
  jsm = await jetstreamManager(nc);
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, { DATA_PLATFORM_URL: NATS_URL, OUTBOX_POLL_MS: '200' });
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
  await nc?.close();
});

const lastSeq = async () => {
  try {
    return (await jsm.streams.info(NATS_STREAM)).state.last_seq;
  } catch {
    return 0; // the publisher creates the stream on first use
  }
};


test.skipIf(!nc)('events land in the JetStream stream with the eventId as message id; a redelivery is dropped', async () => {
  const { client } = app;
  const from = await lastSeq();
  const productId = await client.createProduct(100, 1_000);
  const buyer = await client.createUser(100_000);
  const replies = await Promise.all(
    Array.from({ length: 10 }, () => client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token })),
  );
  expect(replies.map((r) => r.status)).toEqual(Array(10).fill(201));
  const undelivered = async () =>
    (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL'))[0]!.n;
  await eventually(async () => (await undelivered()) === 0, 'every event published');

  const events = await tdb.query<{ event_id: string; aggregate_id: string }>('SELECT event_id, aggregate_id FROM outbox_events');
  const to = await lastSeq();
  const messages = [];
  for (let seq = from + 1; seq <= to; seq++) {
    const m = await jsm.streams.getMessage(NATS_STREAM, { seq });
    if (m) messages.push({ id: m.header?.get('Nats-Msg-Id'), subject: m.subject, body: m.json<any>() });
  }
  const ours = messages.filter((m) => events.some((e) => e.event_id === m.id));
  // One stream carries both event types, so an order's events keep their order in it.
  expect((await jsm.streams.info(NATS_STREAM)).config.subjects).toEqual(expect.arrayContaining(['orders.paid', 'orders.cancelled']));
  expect(ours).toHaveLength(10);
  for (const m of ours) {
    expect(m.subject).toBe('orders.paid');
    expect(m.body.eventId).toBe(m.id);
    expect(m.body.type).toBe('order.paid');
    expect(replies.map((r) => r.body.orderId)).toContain(m.body.data.orderId);
  }

  const again = await client.post(`/admin/events/${events[0]!.event_id}/redeliver`, {});
  expect(again.status).toBe(202);
  await eventually(async () => (await undelivered()) === 0, 'the redelivery published');
  const after = await lastSeq();
  const newer = [];
  for (let seq = to + 1; seq <= after; seq++) newer.push((await jsm.streams.getMessage(NATS_STREAM, { seq }))?.header?.get('Nats-Msg-Id'));
  expect(newer, 'the redelivered eventId must not be stored twice').not.toContain(events[0]!.event_id);
});

test.skipIf(!nc)('a comma list of servers, its first node down: the client connects to one that answers and every event lands', async () => {
  const listed = await startTestApp(tdb.url, { DATA_PLATFORM_URL: `nats://127.0.0.1:1,${NATS_URL}`, OUTBOX_POLL_MS: '200' });
  try {
    const { client } = listed;
    const productId = await client.createProduct(100, 100);
    const buyer = await client.createUser(10_000);
    const placed = await Promise.all(
      Array.from({ length: 5 }, () => client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token })),
    );
    expect(placed.map((r) => r.status)).toEqual(Array(5).fill(201));
    const ids = placed.map((r) => r.body.orderId as string);
    const delivered = async () =>
      (await tdb.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox_events WHERE aggregate_id = ANY($1::text[]) AND delivered_at IS NOT NULL',
        [ids],
      ))[0]!.n;
    await eventually(async () => (await delivered()) === 5, 'the five events published through the list');
  } finally {
    await listed.close();
  }
});

