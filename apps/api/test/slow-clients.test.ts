import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { Client, secretBytes } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

/**
 * Slow and abusive clients (issue "Long faults and hostile clients"): one address opens 2,000
 * connections, each sending an order's head and then trickling its body, or trickling the head
 * itself, a byte at a time. The service runs as its own process, as it would be attacked from
 * outside. Linux routes all of 127.0.0.0/8 to loopback: the attacker binds 127.0.0.2, the buyers
 * connect from 127.0.0.1.
 */

const ATTACKERS = 2_000;
const PER_ADDRESS = 256;
const IN_FLIGHT = 64;
/** Short timeouts, so the test waits seconds instead of the production 10 s and 15 s. */
const HEADERS_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 4_000;
const TRICKLE_MS = 250;
/** The bound for a buyer's order while the attack goes on. */
const ORDER_WITHIN_MS = 1_000;

let tdb: TestDatabase;
let api: ApiProcess;
let admin: Client;

beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startApiProcess(tdb.url, {
    MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS),
    MAX_IN_FLIGHT_REQUESTS: String(IN_FLIGHT),
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    OUTBOX_RELAY: 'off',
  });
  admin = new Client(api.url, await signToken(secretBytes, { admin: true }));
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

interface Trickler {
  readonly kind: 'head' | 'body';
  readonly socket: net.Socket;
  received: string;
  closed: boolean;
  timer: NodeJS.Timeout | null;
}

/**
 * A connection from `localAddress` that sends a request and never finishes it: an order's head and
 * then its body a byte every TRICKLE_MS (`body`), or half a head and then a header byte every
 * TRICKLE_MS (`head`).
 */
function trickle(port: number, localAddress: string, kind: 'head' | 'body', token: string): Trickler {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  const t: Trickler = { kind, socket, received: '', closed: false, timer: null };
  const head = `POST /orders HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n`;
  socket.once('connect', () => {
    socket.write(kind === 'body' ? `${head}Content-Length: 1000\r\n\r\n{` : `${head}X-Slow: `);
    t.timer = setInterval(() => socket.write(kind === 'body' ? ' ' : 'a'), TRICKLE_MS);
  });
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (t.received += chunk));
  // A refused connection is reset while the client still writes: ECONNRESET or EPIPE, expected.
  socket.on('error', () => undefined);
  socket.once('close', () => {
    t.closed = true;
    if (t.timer) clearInterval(t.timer);
  });
  return t;
}

const refusedConnections = async () => {
  const text = (await admin.get<string>('/metrics')).body;
  return Number(/^http_connections_refused_total (\d+)$/m.exec(text)?.[1] ?? NaN);
};

test(`${ATTACKERS} connections trickling heads and bodies from one address: another address's orders still get 201 within a second`, async () => {
  const port = Number(new URL(api.url).port);
  const productId = await admin.createProduct(1_000, 100_000);
  const buyers = await Promise.all(Array.from({ length: 4 }, () => admin.createUser(10_000_000)));
  const attackerToken = await signToken(secretBytes, { userId: buyers[0]!.userId });

  // Buyers on 127.0.0.1 order one after another, four at a time, for as long as the attack lasts.
  const orders: Array<{ status: number; ms: number; code: unknown }> = [];
  let attacking = true;
  const ordering = Promise.all(
    buyers.map(async (b) => {
      while (attacking) {
        const started = performance.now();
        const r = await admin.post('/orders', { userId: b.userId, items: [{ productId, quantity: 1 }] }, { token: b.token });
        orders.push({ status: r.status, ms: performance.now() - started, code: r.body?.code });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }),
  );

  const tricklers: Trickler[] = [];
  try {
    // Orders are flowing before the attack starts.
    await eventually(() => orders.length >= 4, 'the first orders');
    for (let i = 0; i < ATTACKERS; i++) tricklers.push(trickle(port, '127.0.0.2', i % 2 ? 'head' : 'body', attackerToken));

    // While the accepted ones are held (before the head timeout cuts them), the cap is not
    // exhausted: a request from the other address is served, not shed.
    await eventually(() => tricklers.filter((t) => t.closed).length >= ATTACKERS - PER_ADDRESS, 'the connections over the limit to be closed', 10_000);
    expect(tricklers.filter((t) => !t.closed).length).toBe(PER_ADDRESS);
    expect((await admin.get('/products', { token: null })).status).toBe(200);

    // Then the timeouts cut off the rest.
    await eventually(() => tricklers.every((t) => t.closed), 'every trickling connection to be cut off', 30_000);
  } finally {
    attacking = false;
    await ordering;
    for (const t of tricklers) {
      if (t.timer) clearInterval(t.timer);
      t.socket.destroy();
    }
  }

  // Over the limit: closed as soon as accepted, without a byte of answer.
  const refused = tricklers.filter((t) => t.received === '');
  expect(refused).toHaveLength(ATTACKERS - PER_ADDRESS);
  expect(await refusedConnections()).toBe(ATTACKERS - PER_ADDRESS);
  // Within it: answered 408 (problem+json) by the head or request timeout, and closed.
  const cut = tricklers.filter((t) => t.received !== '');
  expect(cut).toHaveLength(PER_ADDRESS);
  for (const t of cut) {
    expect(t.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(t.received).toMatch(/\r\nConnection: close\r\n/i);
    expect(t.received).toContain('"status":408');
  }
  // More bodies were trickling at once than the in-flight cap has slots, and none of them took one.
  const bodies = cut.filter((t) => t.kind === 'body').length;
  expect(bodies).toBeGreaterThan(IN_FLIGHT);
  expect(cut.length - bodies).toBeGreaterThan(0);

  // Every buyer's order went through, each within the bound.
  expect(orders.length).toBeGreaterThanOrEqual(20);
  expect(orders.filter((o) => o.status !== 201)).toEqual([]);
  const slowest = Math.max(...orders.map((o) => o.ms));
  expect(slowest).toBeLessThan(ORDER_WITHIN_MS);
  // Each buyer's orders, and none of the attacker's: no trickled body ever arrived.
  const [placed] = await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
  expect(placed!.n).toBe(orders.length);
  console.log(
    `slow clients: ${orders.length} orders from 127.0.0.1, slowest ${slowest.toFixed(0)} ms; ` +
      `from 127.0.0.2 ${refused.length} refused, ${cut.length} cut off with 408 (${bodies} trickling bodies)`,
  );
});
