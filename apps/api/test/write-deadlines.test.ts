import pg from 'pg';
import { afterEach, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';

/**
 * A write queued behind a slow group (contract: 503 changes nothing): one group write is held on a
 * row lock another session keeps, with one write in flight, so the orders behind it wait in the
 * queue. Those that wait past ORDER_QUEUE_DEADLINE_MS are answered 503 and never written; those
 * whose client goes away are never written; the one already sent is written and answered 201.
 */
const undo: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of undo.splice(0).reverse()) await f().catch(() => undefined);
});

async function arrange(env: Record<string, string>) {
  const tdb = await createTestDatabase();
  undo.push(() => tdb.drop());
  const app: TestApp = await startTestApp(tdb.url, { ORDER_WRITES_IN_FLIGHT: '1', OUTBOX_RELAY: 'off', ...env });
  undo.push(() => app.close());
  const productId = await app.client.createProduct(1_000, 100);
  const buyers = await Promise.all(Array.from({ length: 9 }, () => app.client.createUser(50_000)));
  // Another session holds the product's row: the first group write waits on it, in flight.
  const blocker = new pg.Client({ connectionString: tdb.url });
  await blocker.connect();
  undo.push(() => blocker.end());
  await blocker.query('BEGIN');
  await blocker.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId]);
  const order = (n: number, init: { signal?: AbortSignal; key?: string } = {}) =>
    fetch(`${app.client.baseUrl}/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${buyers[n]!.token}`,
        'content-type': 'application/json',
        ...(init.key ? { 'idempotency-key': init.key } : {}),
      },
      body: JSON.stringify({ userId: buyers[n]!.userId, items: [{ productId, quantity: 1 }] }),
      signal: init.signal,
    });
  const waitingOnLock = async () =>
    (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0]!.n;
  const ordersOf = async (n: number) =>
    (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE user_id = $1', [buyers[n]!.userId]))[0]!.n;
  return { tdb, app, productId, buyers, blocker, order, waitingOnLock, ordersOf };
}

test('queued past ORDER_QUEUE_DEADLINE_MS: 503 with Retry-After and nothing written; the write already sent is written; the key stays free', async () => {
  const { tdb, blocker, order, waitingOnLock, ordersOf } = await arrange({ ORDER_QUEUE_DEADLINE_MS: '300' });
  const first = order(0);
  await eventually(async () => (await waitingOnLock()) === 1, 'the first group write waiting on the held row');
  const queued = await Promise.all(Array.from({ length: 8 }, (_, i) => order(i + 1, { key: `late-${i + 1}` })));
  // Answered while the first write is still held: they never reached the database.
  for (const res of queued) {
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).not.toBeNull();
    expect(((await res.json()) as { code: string }).code).toBe('SERVICE_UNAVAILABLE');
  }
  await blocker.query('COMMIT');
  expect((await first).status).toBe(201);
  expect(await ordersOf(0)).toBe(1);
  for (let n = 1; n <= 8; n++) expect(await ordersOf(n), `orders of buyer ${n}`).toBe(0);
  // A refused request leaves its key free: the same key now places the order.
  const retried = await order(1, { key: 'late-1' });
  expect(retried.status).toBe(201);
  await assertInvariants(tdb, new Map());
});

test('a client that goes away while its write is queued: never written; the others behind the same slow group are', async () => {
  const { tdb, blocker, order, waitingOnLock, ordersOf } = await arrange({ ORDER_QUEUE_DEADLINE_MS: '0' });
  const first = order(0);
  await eventually(async () => (await waitingOnLock()) === 1, 'the first group write waiting on the held row');
  const gone = Array.from({ length: 4 }, () => new AbortController());
  const leaving = gone.map((c, i) => order(i + 1, { signal: c.signal }).catch((err: Error) => err));
  const staying = Array.from({ length: 4 }, (_, i) => order(i + 5));
  // Let every request reach its queue (each is decided on a snapshot first), then four clients hang up.
  await new Promise((r) => setTimeout(r, 300));
  for (const c of gone) c.abort();
  for (const r of await Promise.all(leaving)) expect(r).toBeInstanceOf(Error);
  await new Promise((r) => setTimeout(r, 200)); // the server sees the four connections close
  await blocker.query('COMMIT');
  expect((await first).status).toBe(201);
  for (const res of await Promise.all(staying)) expect(res.status).toBe(201);
  for (let n = 1; n <= 4; n++) expect(await ordersOf(n), `orders of buyer ${n}, who went away`).toBe(0);
  for (let n = 5; n <= 8; n++) expect(await ordersOf(n), `orders of buyer ${n}`).toBe(1);
  await assertInvariants(tdb, new Map());
});
