import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { auditInvariants, openDatabase, startEmbeddedPostgres, type EmbeddedDatabase } from '@shop/adapters-postgres';
import { Client, secretBytes, type Reply } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';
import { Receiver } from '../../../test/support/receiver.ts';
import { signToken } from '@shop/adapters-http';

/**
 * PostgreSQL stopped and started again under load. Its own embedded cluster on a fixed port, so
 * the restart touches no other test's database.
 */
let dir: string;
let database: EmbeddedDatabase;
let port: number;
let api: ApiProcess;
let receiver: Receiver;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'order-service-restart-'));
  database = await startEmbeddedPostgres(dir);
  port = Number(new URL(database.url).port);
  receiver = await new Receiver().start();
  api = await startApiProcess(database.url, {
    DATA_PLATFORM_URL: receiver.url,
    DATABASE_ACQUIRE_TIMEOUT_MS: '1000',
    DATABASE_STATEMENT_TIMEOUT_MS: '3000',
    OUTBOX_POLL_MS: '200',
  });
});
afterAll(async () => {
  await api?.stop();
  await receiver?.stop();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('during a PostgreSQL restart requests fail with 503, the service recovers by itself, no partial order, no lost event', async () => {
  const client = new Client(api.url, await signToken(secretBytes, { admin: true }));
  const buyers = await Promise.all(Array.from({ length: 16 }, () => client.createUser(10_000_000)));
  const productId = await client.createProduct(100, 1_000_000);

  const replies: Reply[] = [];
  let running = true;
  const workers = buyers.map(async (buyer) => {
    while (running) {
      replies.push(await client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token }));
      await sleep(5);
    }
  });
  await sleep(1_000);
  await database.stop();
  await sleep(1_500);
  database = await startEmbeddedPostgres(dir, undefined, { port });
  // Until the service has served orders again after the restart.
  const before = replies.length;
  for (let i = 0; i < 300 && replies.slice(before).filter((r) => r.status === 201).length < 50; i++) await sleep(50);
  running = false;
  await Promise.all(workers);

  const byStatus = new Map<number, Reply[]>();
  for (const r of replies) byStatus.set(r.status, [...(byStatus.get(r.status) ?? []), r]);
  expect([...byStatus.keys()].sort()).toEqual([201, 503]);
  for (const r of byStatus.get(503)!) {
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(r.body.code).toBe('SERVICE_UNAVAILABLE');
  }
  expect(replies.slice(before).filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(50);
  expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);

  // Every 201 is stored; nothing is half-written; every stored order's event arrives once.
  const db = openDatabase({ connectionString: database.url, max: 2 });
  const pool = db.pool;
  try {
    const { rows } = await pool.query<{ id: string }>('SELECT id::text AS id FROM orders');
    const stored = new Set(rows.map((r) => r.id));
    for (const r of byStatus.get(201)!) expect(stored.has(r.body.orderId)).toBe(true);
    expect(await auditInvariants(pool, new Map([[productId, 1_000_000]]))).toEqual([]);
    await receiver.until(() => receiver.eventIdsByOrder().size >= stored.size, 'every stored order\'s event', 60_000);
    const byOrder = receiver.eventIdsByOrder();
    for (const id of stored) expect(byOrder.get(id)?.size).toBe(1);
  } finally {
    await db.close();
  }
});
