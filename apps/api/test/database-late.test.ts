import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { expect, inject, test } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedDatabase } from '@shop/adapters-postgres';
import { signToken } from '@shop/adapters-http';
import { Client, secretBytes } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';
import { makeTempDir, removeTempDir } from '../../../test/support/temp.ts';

const logEntries = (api: ApiProcess) =>
  api.output.flatMap((line) => {
    try {
      return [JSON.parse(line) as { msg?: string; code?: string; level?: number }];
    } catch {
      return [];
    }
  });

async function waitUntilReady(url: string, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if ((await fetch(`${url}/health/ready`)).status === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not ready within ${withinMs} ms`);
}

test('started while its PostgreSQL is down, it listens at once, answers 503 to what needs the database, and serves fully once the database comes up', async () => {
  // The database's directory and password are known in advance, so is its URL; the server starts later.
  const dir = makeTempDir('order-service-late-');
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  await writeFile(path.join(dir, 'postgres.password'), password, { mode: 0o600 });
  const databaseUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;

  let database: EmbeddedDatabase | null = null;
  const api = await startApiProcess(databaseUrl, { OUTBOX_RELAY: 'off', DATABASE_ACQUIRE_TIMEOUT_MS: '1000' }, { until: 'listening' });
  try {
    const client = new Client(api.url, await signToken(secretBytes, { admin: true }));

    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    const ready = await client.get('/health/ready', { token: null });
    expect(ready.status).toBe(503);
    for (const res of [
      await client.get('/products', { token: null }),
      await client.get('/products/top', { token: null }),
      await client.post('/admin/users', { name: 'too early' }),
      await client.get('/users/1/balance', { token: await client.userToken(1) }),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // What does not need the database still works, and a bad token is still a 401.
    expect((await fetch(`${api.url}/openapi.json`)).status).toBe(200);
    expect((await client.get('/users/1/balance', { token: 'not.a.token' })).status).toBe(401);

    const retries = logEntries(api).filter((e) => e.msg === 'the database is unreachable at start; retrying');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]!.code).toBe('ECONNREFUSED');
    expect(logEntries(api).some((e) => e.msg === 'ready')).toBe(false);

    database = await startEmbeddedPostgres(dir, () => undefined, { port });
    await waitUntilReady(api.url, 60_000);

    // Migrated and serving: the whole path of an order.
    const { userId, token } = await client.createUser(10_000);
    const productId = await client.createProduct(1_000, 5);
    const order = await client.post('/orders', { userId, items: [{ productId, quantity: 2 }] }, { token });
    expect(order.status).toBe(201);
    expect((await client.get(`/users/${userId}/balance`, { token })).body.balance).toBe(8_000);
    expect(logEntries(api).some((e) => e.msg === 'ready')).toBe(true);
  } finally {
    expect(await api.stop()).toBe(0);
    await database?.stop();
    await removeTempDir(dir);
  }
});

test('started before its database exists, it says why, retries, and comes up when the database does', async () => {
  const admin = inject('adminDatabaseUrl');
  const name = `t_late_${randomBytes(5).toString('hex')}`;
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const sql = async (text: string) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };

  const api = await startApiProcess(url.toString(), { OUTBOX_RELAY: 'off' }, { until: 'listening' });
  try {
    expect((await fetch(`${api.url}/health/ready`)).status).toBe(503);
    await sql(`CREATE DATABASE ${name}`);
    await waitUntilReady(api.url, 30_000);
    const retries = logEntries(api).filter((e) => e.msg === 'the database is unreachable at start; retrying');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]!.code).toBe('3D000'); // invalid_catalog_name: the database does not exist yet
    expect((await fetch(`${api.url}/products`)).status).toBe(200); // migrated and serving
  } finally {
    expect(await api.stop()).toBe(0);
    await sql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
});

test('stopped before its database ever answered, it exits cleanly', async () => {
  const api = await startApiProcess('postgres://postgres@127.0.0.1:1/none', {}, { until: 'listening' });
  expect((await fetch(`${api.url}/health/ready`)).status).toBe(503);
  expect(await api.stop('SIGTERM')).toBe(0);
});
