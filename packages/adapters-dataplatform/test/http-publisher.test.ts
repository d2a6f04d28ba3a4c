import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { OutboxRecord } from '@shop/application';
import { HttpEventPublisher } from '../src/index.ts';

// What the relay relies on from one delivery: it resolves only on a 2xx, rejects with the status
// otherwise (the relay tells a refusal from an outage by it), and never outlives its budget,
// whether the platform hangs or the event is still queued behind one that does.

type Answer = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function platform(answer: Answer): Promise<{ url: string; seen: Array<{ key: string; body: string }>; sockets: Set<unknown> }> {
  const seen: Array<{ key: string; body: string }> = [];
  const sockets = new Set<unknown>();
  const server = http.createServer((req, res) => {
    sockets.add(req.socket);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ key: String(req.headers['idempotency-key']), body });
      answer(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({ close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events?v=1`, seen, sockets };
}

function publisher(url: string, timeoutMs = 2_000, connections = 2): HttpEventPublisher {
  const p = new HttpEventPublisher(url, { timeoutMs, connections });
  open.unshift({ close: () => p.close() });
  return p;
}

const record = (n: number): OutboxRecord => ({
  eventId: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`,
  type: 'order.paid',
  payload: { eventId: `e${n}`, type: 'order.paid', data: { orderId: `o${n}`, items: [{ productId: n, quantity: 1 }] } },
  attempts: 1,
  createdAt: new Date(),
});

describe('HttpEventPublisher', () => {
  test('a 2xx delivers the payload as JSON with the eventId as Idempotency-Key, over kept-alive connections', async () => {
    const { url, seen, sockets } = await platform((_req, res) => {
      // A body the publisher must read to the end before the connection takes the next event.
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, pad: 'x'.repeat(100_000) }));
    });
    const p = publisher(url, 2_000, 1);
    for (let n = 1; n <= 20; n++) await p.publish(record(n));
    await Promise.all([21, 22, 23].map((n) => p.publish(record(n))));
    expect(seen.map((s) => s.key)).toEqual(Array.from({ length: 23 }, (_, i) => record(i + 1).eventId));
    expect(JSON.parse(seen[4]!.body)).toEqual(record(5).payload);
    expect(sockets.size).toBe(1);
  });

  test('anything else rejects with the status, and the next event still goes through', async () => {
    let status = 503;
    const { url } = await platform((_req, res) => res.writeHead(status).end('no'));
    const p = publisher(url);
    await expect(p.publish(record(1))).rejects.toThrow(/answered HTTP 503/);
    status = 422;
    await expect(p.publish(record(2))).rejects.toThrow(/answered HTTP 422/);
    status = 302;
    await expect(p.publish(record(3))).rejects.toThrow(/answered HTTP 302/);
    status = 204;
    await expect(p.publish(record(4))).resolves.toBeUndefined();
  });

  test('a platform that never answers: rejected at the budget, and the event queued behind it is rejected unsent', async () => {
    const { url, seen } = await platform(() => undefined); // reads the request, never answers
    const p = publisher(url, 300, 1);
    const started = Date.now();
    const results = await Promise.allSettled([p.publish(record(1)), p.publish(record(2))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of results) expect(String((r as PromiseRejectedResult).reason)).toMatch(/timeout: no answer from the data platform within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.map((s) => s.key)).toEqual([record(1).eventId]);
  });

  test('a 2xx status line is the acceptance: a body that then stalls does not undo it; a 103 before it is not an answer', async () => {
    let stall = true;
    const { url } = await platform((_req, res) => {
      if (stall) {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('partial'); // and never the rest
      } else {
        res.writeEarlyHints({ link: '</events>; rel=preload' });
        setTimeout(() => res.writeHead(204).end(), 50);
      }
    });
    const p = publisher(url, 300);
    await expect(p.publish(record(1))).resolves.toBeUndefined();
    stall = false;
    await expect(p.publish(record(2))).resolves.toBeUndefined();
  });

  test('no platform listening: rejected with the refusal, not at the budget', async () => {
    const { url } = await platform((_req, res) => res.end());
    await open.pop()!.close(); // the server goes away; its port refuses
    const err = await publisher(url, 2_000).publish(record(1)).then(() => null, (e: unknown) => e as Error & { code?: string });
    expect(err?.code).toBe('ECONNREFUSED');
    expect(String(err)).not.toMatch(/timeout/);
  });

  test('a connection closed before any status line: rejected with the socket error, not at the budget', async () => {
    const { url } = await platform((req) => req.socket.destroy());
    const err = await publisher(url, 2_000).publish(record(1)).then(() => null, (e: unknown) => e as Error & { code?: string });
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).not.toMatch(/timeout|answered HTTP/);
  });
});
