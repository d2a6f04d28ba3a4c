import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type HttpDeps } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { fingerprint, type Fingerprint } from '../../../test/support/fingerprint.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

/**
 * A body over the limit is answered 413 PAYLOAD_TOO_LARGE, and the client reads that answer
 * even while it is still writing its body (contract, "Request-level errors"). Node's fetch
 * (undici) sends a 3 MB body as fast as the socket takes it; a server that answers and closes at
 * once resets the connection under the client's writes, and fetch then fails with EPIPE or
 * ECONNRESET instead of showing the 413.
 *
 * The relay and the sales rollup are off, so nothing but these requests could write: the whole
 * database is fingerprinted before and must be the same after.
 */

let tdb: TestDatabase;
let app: TestApp;
let proc: ApiProcess;
let before: Fingerprint;
let userId: number;
let userToken: string;
let productId: number;

const ENV = { OUTBOX_RELAY: 'off', TOP_SELLERS_REFRESH_MS: '3600000' };
const MB = 1024 * 1024;
const TRIES = 20;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, ENV);
  proc = await startApiProcess(tdb.url, ENV);
  const user = await app.client.createUser(100_000, 'big body user');
  userId = user.userId;
  userToken = user.token;
  productId = await app.client.createProduct(1_000, 10, 'big body product');
  before = await fingerprint(tdb);
});
afterAll(async () => {
  await proc?.stop();
  await app?.close();
  await tdb?.drop();
});

/**
 * A request that would succeed but for its size: a valid order (or charge) padded to `size`
 * bytes, so that one let through would show in the database.
 */
function padded(fields: Record<string, unknown>, size: number): string {
  const head = JSON.stringify({ ...fields, pad: '' }).slice(0, -2);
  return head + 'x'.repeat(size - head.length - 2) + '"}';
}
const orderBody = (size: number) => padded({ userId, items: [{ productId, quantity: 1 }] }, size);
const chargeBody = (size: number) => padded({ amount: 1 }, size);

type Outcome = { status: number; contentType: string | null; body: unknown } | { error: string };

/** One fetch; a failure is an outcome too (its cause's code), so that all tries are counted. */
async function send(baseUrl: string, path: string, body: string | (() => ReadableStream<Uint8Array>)): Promise<Outcome> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${userToken}` };
  try {
    const res =
      typeof body === 'string'
        ? await fetch(baseUrl + path, { method: 'POST', headers, body })
        : await fetch(baseUrl + path, { method: 'POST', headers, body: body(), duplex: 'half' } as RequestInit);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* keep the text */
    }
    return { status: res.status, contentType: res.headers.get('content-type'), body: parsed };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { error: `${(err as Error).message}: ${cause?.code ?? cause?.message ?? 'no cause'}` };
  }
}

/** A body of `size` bytes in 64 KiB chunks, without Content-Length (Transfer-Encoding: chunked). */
function chunked(text: string): () => ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return () => {
    let at = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(at, at + 64 * 1024));
        at += 64 * 1024;
      },
    });
  };
}

function expect413(outcomes: Outcome[]) {
  const failed = outcomes.filter((o) => 'error' in o || o.status !== 413);
  const summary = `${failed.length} of ${outcomes.length} did not read a 413: ${JSON.stringify(failed.map((o) => ('error' in o ? o.error : o.status)))}`;
  expect(failed.length, summary).toBe(0);
  for (const o of outcomes) {
    if ('error' in o) continue;
    expect(o.contentType ?? '').toMatch(/^application\/problem\+json/);
    expect(o.body).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE', type: '/problems/payload-too-large' });
  }
}

async function tries(n: number, one: () => Promise<Outcome>): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let i = 0; i < n; i++) outcomes.push(await one());
  return outcomes;
}

const targets: ReadonlyArray<[string, () => string]> = [
  ['the app in the test process (startTestApp)', () => app.client.baseUrl],
  ['an API process (startApiProcess)', () => proc.url],
];

describe.each(targets)('3 MB bodies with fetch, %s', (_name, baseUrl) => {
  test(`POST /orders with Content-Length, ${TRIES} times: every one reads its 413`, async () => {
    const body = orderBody(3 * MB);
    expect413(await tries(TRIES, () => send(baseUrl(), '/orders', body)));
  });

  test(`POST /users/{userId}/balance/charge with Content-Length, ${TRIES} times: every one reads its 413`, async () => {
    const body = chargeBody(3 * MB);
    expect413(await tries(TRIES, () => send(baseUrl(), `/users/${userId}/balance/charge`, body)));
  });

  test(`POST /orders chunked (no Content-Length), ${TRIES} times: every one reads its 413`, async () => {
    const body = chunked(orderBody(3 * MB));
    expect413(await tries(TRIES, () => send(baseUrl(), '/orders', body)));
  });
});

// ---------------------------------------------------------------------------------------------
// Over a raw socket: the client reads the 413 first, then goes on writing its body.

interface RawOutcome {
  /** The answer as it came, head and body. */
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  /** Body bytes the client wrote after it had read the answer. */
  readonly wroteAfter: number;
  /**
   * How the connection ended: 'end' is the server's FIN and then a clean close once the client
   * had sent all; else the code of the error the client met (EPIPE, ECONNRESET).
   */
  readonly ended: string;
  /** Milliseconds from the answer to the end of the connection. */
  readonly lingeredMs: number;
}

interface RawOptions {
  readonly port: number;
  readonly path: string;
  /** Body bytes after those sent before the answer: a number, or endless. */
  readonly rest: number | 'endless';
  readonly chunked: boolean;
  /** Pause between chunks after the answer, to trickle. */
  readonly pauseMs?: number;
  readonly chunk?: number;
  /** Give up writing (the test fails on what it measured) after this many bytes. */
  readonly giveUpAfter?: number;
}

const FIRST = 256 * 1024; // past the 64 KiB limit, so the answer comes while the body does not end

function parseAnswer(text: string): { status: number; headers: Headers; body: unknown; complete: boolean } {
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) return { status: 0, headers: new Headers(), body: undefined, complete: false };
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const raw = text.slice(split + 4);
  const length = Number(headers.get('content-length') ?? NaN);
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    /* keep the text */
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body, complete: Buffer.byteLength(raw) >= length };
}

async function rawOversized(o: RawOptions): Promise<RawOutcome> {
  const chunkSize = o.chunk ?? 64 * 1024;
  // Half-open, as HTTP clients are: the server's FIN after its answer does not stop the upload.
  const socket = net.connect({ port: o.port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const received: Buffer[] = [];
  let failed: string | null = null;
  let fin = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (c: Buffer) => received.push(c));
  socket.on('end', () => (fin = true));
  socket.on('error', (err: NodeJS.ErrnoException) => (failed ??= err.code ?? err.message));
  const answer = () => parseAnswer(Buffer.concat(received).toString('utf8'));

  const declared = o.rest === 'endless' ? null : FIRST + o.rest;
  socket.write(
    `POST ${o.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${userToken}\r\nContent-Type: application/json\r\n` +
      (o.chunked || declared === null ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${declared}\r\n`) +
      '\r\n',
  );
  const piece = (n: number) => {
    const data = Buffer.alloc(n, 'x');
    return o.chunked || declared === null ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data;
  };
  const write = (bytes: Buffer) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.write(bytes, () => resolve())));

  for (let sent = 0; sent < FIRST && failed === null; sent += chunkSize) await write(piece(chunkSize));
  const waitedFrom = Date.now();
  while (!answer().complete && failed === null && Date.now() - waitedFrom < 10_000) await new Promise((r) => setTimeout(r, 5));
  expect(answer().complete, `no complete answer before writing the rest (${failed})`).toBe(true);
  const answeredAt = Date.now();

  let wroteAfter = 0;
  const total = o.rest === 'endless' ? Infinity : o.rest;
  while (wroteAfter < total && failed === null && !socket.destroyed && wroteAfter < (o.giveUpAfter ?? Infinity)) {
    const n = Math.min(chunkSize, total - wroteAfter);
    await write(piece(n));
    wroteAfter += n;
    if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
  }
  if (failed === null && !socket.destroyed && (o.chunked || declared === null)) await write(Buffer.from('0\r\n\r\n'));
  // All sent: wait for the server's FIN, as a client that sent its whole request does, then close.
  const givenUp = setTimeout(() => socket.destroy(new Error('the server did not close the connection')), 15_000);
  while (!fin && failed === null && !socket.destroyed) await new Promise((r) => setTimeout(r, 5));
  socket.end();
  await closed;
  clearTimeout(givenUp);
  const { status, headers, body } = answer();
  return { status, headers, body, wroteAfter, ended: failed ?? (fin ? 'end' : 'close'), lingeredMs: Date.now() - answeredAt };
}

function expectRaw413(r: RawOutcome) {
  expect(r.status, JSON.stringify(r)).toBe(413);
  expect(r.headers.get('content-type') ?? '').toMatch(/^application\/problem\+json/);
  expect(r.headers.get('connection')).toBe('close');
  expect(r.body).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
}

describe.each(targets)('a client that reads its 413 and then finishes its body, %s', (_name, baseUrl) => {
  const port = () => Number(new URL(baseUrl()).port);

  test('declared by Content-Length: the rest of the body is read, then the connection closed cleanly', async () => {
    const r = await rawOversized({ port: port(), path: '/orders', rest: 3 * MB, chunked: false });
    expectRaw413(r);
    expect([r.ended, r.wroteAfter]).toEqual(['end', 3 * MB]);
  });

  test('chunked, no Content-Length: the rest of the body is read, then the connection closed cleanly', async () => {
    const r = await rawOversized({ port: port(), path: `/users/${userId}/balance/charge`, rest: 3 * MB, chunked: true });
    expectRaw413(r);
    expect([r.ended, r.wroteAfter]).toEqual(['end', 3 * MB]);
  });
});

/** Sends `bytes` in one write, half-closes, and returns all the server sent until it closed. */
async function rawOnce(port: number, bytes: string): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((resolve) => socket.once('connect', resolve));
  const received: Buffer[] = [];
  socket.on('data', (c: Buffer) => received.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.end(bytes);
  await closed;
  return Buffer.concat(received).toString('utf8');
}

test(`a request pipelined behind a drained body is not served, ${TRIES} times: its connection is closing`, async () => {
  const port = Number(new URL(app.client.baseUrl).port);
  const order = JSON.stringify({ userId, items: [{ productId, quantity: 1 }] });
  const headers = `Host: x\r\nAuthorization: Bearer ${userToken}\r\nContent-Type: application/json\r\n`;
  // The oversized request, its whole body, and a valid order right behind it. Served, the order
  // would be placed and its answer lost: the client was told the connection ends after the 413.
  const bytes =
    `POST /orders HTTP/1.1\r\n${headers}Content-Length: ${FIRST}\r\n\r\n${'x'.repeat(FIRST)}` +
    `POST /orders HTTP/1.1\r\n${headers}Content-Length: ${Buffer.byteLength(order)}\r\n\r\n${order}`;
  for (let i = 0; i < TRIES; i++) {
    const text = await rawOnce(port, bytes);
    expect(text.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 413']);
  }
  expect(await tdb.query('SELECT id FROM orders')).toEqual([]);
});

describe('draining is bounded', () => {
  test('an endless body is cut off after a bounded number of bytes, and the service stays healthy', async () => {
    const port = Number(new URL(app.client.baseUrl).port);
    const r = await rawOversized({ port, path: '/orders', rest: 'endless', chunked: true, giveUpAfter: 512 * MB });
    expectRaw413(r);
    // The server reads at most its bound (10 MiB) after answering; the rest is what the two
    // kernels' socket buffers took before the reset reached the client.
    expect(r.ended).not.toBe('end');
    expect(r.wroteAfter).toBeLessThan(64 * MB);
    expect((await fetch(`${app.client.baseUrl}/health/live`)).status).toBe(200);
    expect((await app.client.get(`/users/${userId}/balance`)).body).toEqual({ userId, balance: 100_000 });
  });

  test('a body trickled after the answer is cut off after a bounded time', async () => {
    // Only the app (no database): the 413 comes before any route runs. Bounds of 1 MiB and 500 ms.
    const deps = { checkReady: async () => undefined, metrics: { observeRequest: () => undefined } } as unknown as HttpDeps;
    const small = await buildApp(deps, { drainBeforeClose: { maxBytes: MB, maxMs: 500 } });
    await small.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (small.server.address() as AddressInfo).port;
      const trickled = await rawOversized({ port, path: '/orders', rest: 'endless', chunked: true, chunk: 1024, pauseMs: 20, giveUpAfter: 4 * MB });
      expectRaw413(trickled);
      expect(trickled.ended).not.toBe('end');
      expect(trickled.lingeredMs).toBeGreaterThanOrEqual(400);
      expect(trickled.lingeredMs).toBeLessThan(3_000);

      const fast = await rawOversized({ port, path: '/orders', rest: 'endless', chunked: true, giveUpAfter: 512 * MB });
      expectRaw413(fast);
      expect(fast.ended).not.toBe('end');
      expect(fast.wroteAfter).toBeLessThan(48 * MB);

      // Within both bounds: read to its end.
      const within = await rawOversized({ port, path: '/orders', rest: MB / 2, chunked: false });
      expectRaw413(within);
      expect([within.ended, within.wroteAfter]).toEqual(['end', MB / 2]);
    } finally {
      await small.close();
    }
  });
});

test('a shutdown does not wait for a body being drained', async () => {
  const deps = { checkReady: async () => undefined, metrics: { observeRequest: () => undefined } } as unknown as HttpDeps;
  const small = await buildApp(deps, { drainBeforeClose: { maxBytes: 512 * MB, maxMs: 60_000 } });
  await small.listen({ port: 0, host: '127.0.0.1' });
  const port = (small.server.address() as AddressInfo).port;
  const draining = rawOversized({ port, path: '/orders', rest: 'endless', chunked: true, chunk: 1024, pauseMs: 20, giveUpAfter: 4 * MB });
  // Answered and draining: the client has read its 413 and trickles on.
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  await small.close();
  expect(Date.now() - started).toBeLessThan(2_000);
  const r = await draining;
  expectRaw413(r);
  expect(r.ended).not.toBe('end');
});

test('nothing reached the database', async () => {
  expect(before.users!.rows).toBe(1);
  expect(await fingerprint(tdb)).toEqual(before);
  expect((await app.client.get(`/users/${userId}/balance`)).body).toEqual({ userId, balance: 100_000 });
});
