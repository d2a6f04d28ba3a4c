import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Reply, type TestApp } from '../../../test/support/http.ts';

let tdb: TestDatabase;
const apps: TestApp[] = [];
const start = async (env: Record<string, string>) => {
  const app = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off', ...env });
  apps.push(app);
  return app;
};

beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await tdb?.drop();
});

function expectProblem(res: Reply, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code });
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

describe('rate limits', () => {
  test('per user: past the burst, 429 RATE_LIMITED with Retry-After, and the refused order changes nothing', async () => {
    const { client } = await start({ RATE_LIMIT_USER_PER_SEC: '1', RATE_LIMIT_USER_BURST: '3' });
    const eager = await client.createUser(100_000);
    const calm = await client.createUser(100_000);
    const productId = await client.createProduct(1_000, 100);
    const order = (u: { userId: number; token: string }) =>
      client.post('/orders', { userId: u.userId, items: [{ productId, quantity: 1 }] }, { token: u.token });
    const replies = await Promise.all([order(eager), order(eager), order(eager), order(eager)]);
    expect(replies.filter((r) => r.status === 201)).toHaveLength(3);
    expectProblem(replies.find((r) => r.status !== 201)!, 429, 'RATE_LIMITED');
    expect((await order(calm)).status).toBe(201); // another user is not affected
    // Admins operate the service: never limited (the admin token made the users above, too).
    for (let i = 0; i < 5; i++) expect((await client.get(`/users/${eager.userId}/balance`)).status).toBe(200);
    const [row] = await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE user_id = $1', [eager.userId]);
    expect(row!.n).toBe(3);
  });

  test('per address: past the burst, 429; health and the metrics port stay reachable', async () => {
    const { client, service } = await start({ RATE_LIMIT_IP_PER_SEC: '1', RATE_LIMIT_IP_BURST: '5', METRICS_PORT: '0' });
    const replies = await Promise.all(Array.from({ length: 8 }, () => client.get('/products', { token: null })));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(5);
    for (const r of replies.filter((x) => x.status !== 200)) expectProblem(r, 429, 'RATE_LIMITED');
    expect((await client.get('/health/live', { token: null })).status).toBe(200);
    expect((await client.get('/health/ready', { token: null })).status).toBe(200);
    expect((await fetch(`${service.metricsUrl}/metrics`)).status).toBe(200);
  });
});

/**
 * A stand-in for nginx's `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`: it
 * forwards each request with the address it saw appended to whatever the client sent.
 */
async function startProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const sent = req.headers['x-forwarded-for'];
    const xff = `${sent ? `${sent}, ` : ''}${req.socket.remoteAddress}`;
    const forward = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, 'x-forwarded-for': xff } },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forward.once('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A GET from a given loopback address (127.0.0.0/8 is all this machine), with a forged X-Forwarded-For. */
function getFrom(baseUrl: string, path: string, localAddress: string, forged: string): Promise<number> {
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, localAddress, agent: false, headers: { 'x-forwarded-for': forged } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode!));
    });
    req.once('error', reject);
    req.end();
  });
}

test('behind a proxy (TRUST_PROXY=1) the per-address limit keys on the address the proxy saw, not a forged X-Forwarded-For', async () => {
  const { client } = await start({ TRUST_PROXY: '1', RATE_LIMIT_IP_PER_SEC: '1', RATE_LIMIT_IP_BURST: '4' });
  const proxy = await startProxy(client.baseUrl);
  try {
    // 127.0.0.2 forges a new address with every request: still one client, limited after 4.
    const forger = [];
    for (let i = 0; i < 7; i++) forger.push(await getFrom(proxy.url, '/products', '127.0.0.2', `198.51.100.${i}, 203.0.113.${i}`));
    expect(forger).toEqual([200, 200, 200, 200, 429, 429, 429]);
    // Another real client behind the same proxy is not affected, even claiming the first one's address.
    expect(await getFrom(proxy.url, '/products', '127.0.0.3', '127.0.0.2')).toBe(200);
  } finally {
    await proxy.close();
  }
});

test('load shedding: past MAX_IN_FLIGHT_REQUESTS new requests get 503 at once; operators still get through', async () => {
  const { client } = await start({ MAX_IN_FLIGHT_REQUESTS: '2', DATABASE_STATEMENT_TIMEOUT_MS: '0' });
  const users = [await client.createUser(0), await client.createUser(0)];
  // Another session holds both users' rows, so two charges stay in flight.
  const holder = new pg.Client({ connectionString: tdb.url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM users WHERE id = ANY($1::bigint[]) FOR UPDATE', [users.map((u) => u.userId)]);
  try {
    const stuck = users.map((u) => client.post(`/users/${u.userId}/balance/charge`, { amount: 100 }, { token: u.token }));
    await new Promise((r) => setTimeout(r, 300));
    expectProblem(await client.get('/products', { token: null }), 503, 'SERVICE_UNAVAILABLE');
    expect((await client.get('/health/live', { token: null })).status).toBe(200);
    await holder.query('ROLLBACK');
    expect((await Promise.all(stuck)).map((r) => r.status)).toEqual([200, 200]);
  } finally {
    await holder.end();
  }
  expect((await client.get('/products', { token: null })).status).toBe(200);
});

/**
 * A kept-alive connection from `localAddress` that has asked for /health/live: resolves with the
 * answer's status once it arrives (the service has counted the connection by then), or 0 when the
 * connection closes without an answer.
 */
function connectFrom(baseUrl: string, localAddress: string): Promise<{ status: number; socket: net.Socket }> {
  const { hostname, port } = new URL(baseUrl);
  const socket = net.connect({ host: hostname, port: Number(port), localAddress });
  socket.on('error', () => undefined); // a refused connection is reset
  return new Promise((resolve) => {
    socket.once('connect', () => socket.write('GET /health/live HTTP/1.1\r\nHost: shop\r\n\r\n'));
    socket.once('data', (chunk) => resolve({ status: Number(chunk.toString('latin1').split(' ')[1]), socket }));
    socket.once('close', () => resolve({ status: 0, socket }));
  });
}

test('MAX_CONNECTIONS_PER_ADDRESS: a connection past it is closed unanswered; the trusted proxy is not limited', async () => {
  const { client } = await start({ MAX_CONNECTIONS_PER_ADDRESS: '3', TRUST_PROXY: '127.0.0.3' });
  const open: net.Socket[] = [];
  let refused = 0;
  try {
    const first = await Promise.all([1, 2, 3].map(() => connectFrom(client.baseUrl, '127.0.0.2')));
    open.push(...first.map((c) => c.socket));
    expect(first.map((c) => c.status)).toEqual([200, 200, 200]);
    // A fourth, while the three stay open (idle, kept alive), is closed before it is read.
    expect((await connectFrom(client.baseUrl, '127.0.0.2')).status).toBe(0);
    refused = 1;
    // The trusted proxy's connections carry many clients: not limited.
    const proxied = await Promise.all([1, 2, 3, 4, 5, 6].map(() => connectFrom(client.baseUrl, '127.0.0.3')));
    open.push(...proxied.map((c) => c.socket));
    expect(proxied.map((c) => c.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // Once one closes, the address may open another.
    first[0]!.socket.destroy();
    // (The service sees the close a moment later: until then it refuses.)
    let again = 0;
    for (let tries = 0; again !== 200 && tries < 50; tries++) {
      const c = await connectFrom(client.baseUrl, '127.0.0.2');
      open.push(c.socket);
      again = c.status;
      if (again !== 200) {
        refused++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(again).toBe(200);
  } finally {
    for (const socket of open) socket.destroy();
  }
  const metrics = (await client.get<string>('/metrics')).body;
  expect(Number(/^http_connections_refused_total (\d+)$/m.exec(metrics)?.[1])).toBe(refused);
});
