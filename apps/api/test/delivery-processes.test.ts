import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { Client, secretBytes, type Reply } from '../../../test/support/http.ts';
import { Receiver } from '../../../test/support/receiver.ts';
import { RELAY_ENV } from '../../../test/support/relay-env.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

/** API processes killed, stopped and doubled up: no event lost, none invented, one eventId per order. */

let tdb: TestDatabase;
let receiver: Receiver;
const started: ApiProcess[] = [];

async function start(env: Record<string, string> = {}): Promise<{ proc: ApiProcess; client: Client }> {
  const proc = await startApiProcess(tdb.url, { DATA_PLATFORM_URL: receiver.url, ...RELAY_ENV, ...env });
  started.push(proc);
  return { proc, client: new Client(proc.url, await signToken(secretBytes, { admin: true })) };
}

/** Keeps `workers` order requests in flight until `stop()`; failures of the transport are kept as null. */
function orderStream(client: () => Client, buyers: Array<{ userId: number; token: string }>, productId: number, workers = 8) {
  const replies: Array<Reply | null> = [];
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      const buyer = buyers[(w + i * workers) % buyers.length]!;
      replies.push(
        await client()
          .post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token })
          .catch(() => null),
      );
    }
  });
  return {
    replies,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function storedOrderIds(): Promise<string[]> {
  return (await tdb.query<{ id: string }>('SELECT id FROM orders ORDER BY id')).map((r) => r.id);
}

async function assertEveryStoredOrderDeliveredOnce(): Promise<void> {
  const stored = await storedOrderIds();
  await receiver.until(() => stored.every((id) => receiver.eventIdsByOrder().has(id)), 'every stored order to be delivered', 60_000);
  const byOrder = receiver.eventIdsByOrder();
  for (const id of stored) expect(byOrder.get(id)!.size, `distinct eventIds for order ${id}`).toBe(1);
  expect([...byOrder.keys()].filter((id) => !stored.includes(id)), 'events for orders that do not exist').toEqual([]);
}

beforeAll(async () => {
  receiver = await new Receiver().start();
});
afterAll(async () => {
  for (const p of started) await p.stop('SIGKILL');
  await receiver?.stop();
});

describe('relays across processes', () => {
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    for (const p of started.splice(0)) await p.stop('SIGKILL');
    await tdb?.drop();
  });

  test('SIGKILL in the middle of a stream of orders: answered orders are stored, every stored order is delivered, one eventId each', async () => {
    const first = await start();
    const productId = await first.client.createProduct(10, 1_000_000);
    const buyers = await Promise.all(Array.from({ length: 20 }, () => first.client.createUser(10_000_000)));
    let current = first.client;
    const stream = orderStream(() => current, buyers, productId);
    await receiver.until(() => receiver.accepted.length >= 100, '100 deliveries before the crash');
    await first.proc.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const second = await start();
    current = second.client;
    await new Promise((r) => setTimeout(r, 500));
    await stream.stop();

    const answered = stream.replies.filter((r): r is Reply => r !== null && r.status === 201).map((r) => r.body.orderId as string);
    expect(stream.replies.filter((r) => r !== null && r.status >= 500)).toEqual([]);
    expect(answered.length).toBeGreaterThan(100);
    const stored = new Set(await storedOrderIds());
    expect(answered.filter((id) => !stored.has(id)), 'answered 201 but not stored').toEqual([]);
    await assertEveryStoredOrderDeliveredOnce();
    await second.proc.stop('SIGTERM');
  });

  test('two API processes with relays under load: every event delivered, no duplicates', async () => {
    const before = receiver.accepted.length;
    // What this holds is that two relays never deliver one event twice. A delivery timing out
    // after the receiver took it is sent again, rightly (at least once): with RELAY_ENV's 500 ms
    // that happened once on a loaded machine (load 8-14). A timeout no stall reaches keeps that
    // case out; the lease stays longer than the timeout, as the service requires.
    const patient = { DATA_PLATFORM_TIMEOUT_MS: '10000', OUTBOX_LEASE_MS: '30000' };
    const a = await start(patient);
    const b = await start(patient);
    const productId = await a.client.createProduct(10, 1_000_000);
    const buyers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).client.createUser(10_000_000)));
    let n = 0;
    const stream = orderStream(() => (n++ % 2 ? a.client : b.client), buyers, productId, 16);
    await new Promise((r) => setTimeout(r, 2_000));
    await stream.stop();
    expect(stream.replies.every((r) => r !== null && r.status === 201)).toBe(true);
    await assertEveryStoredOrderDeliveredOnce();
    const mine = receiver.accepted.slice(before);
    const duplicates = mine.length - new Set(mine.map((e) => e.body.eventId)).size;
    expect(duplicates, 'deliveries of one event by both relays').toBe(0);
    expect(await a.proc.stop('SIGTERM')).toBe(0);
    expect(await b.proc.stop('SIGTERM')).toBe(0);
  });

  test('SIGTERM during load: exit 0, every answered order stored, and delivered after the restart', async () => {
    const first = await start();
    const productId = await first.client.createProduct(10, 1_000_000);
    const buyers = await Promise.all(Array.from({ length: 20 }, () => first.client.createUser(10_000_000)));
    receiver.mode = 'hang'; // deliveries pile up, so some are still pending at shutdown
    const stream = orderStream(() => first.client, buyers, productId);
    await new Promise((r) => setTimeout(r, 1_000));
    const code = await first.proc.stop('SIGTERM');
    await stream.stop();
    expect(code).toBe(0);
    const answered = stream.replies.filter((r): r is Reply => r !== null && r.status === 201).map((r) => r.body.orderId as string);
    expect(answered.length).toBeGreaterThan(0);
    const stored = new Set(await storedOrderIds());
    expect(answered.filter((id) => !stored.has(id))).toEqual([]);
    // Requests that reached the server got an answer; only those sent after it closed were refused.
    expect(stream.replies.filter((r) => r !== null && r.status !== 201 && r.status !== 503)).toEqual([]);

    receiver.mode = 'ok';
    const second = await start();
    await assertEveryStoredOrderDeliveredOnce();
    expect(await second.proc.stop('SIGTERM')).toBe(0);
  });
});
