import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { Client, secretBytes } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

/**
 * A rolling deploy in which this code is the old release: the database has been upgraded by a
 * newer one (a migration this code lacks) that no longer allows this release (schema_compatibility
 * above it). An instance of this code started on it stays not ready — 503 to everything that needs
 * the database, a log line saying why — instead of answering 500s, while an instance the database
 * allows, started before, keeps serving.
 */
const MIGRATIONS = fileURLToPath(new URL('../../../packages/adapters-postgres/migrations/', import.meta.url));
let tdb: TestDatabase;
const procs: ApiProcess[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  await tdb?.drop();
});

test('an instance too old for the database stays not ready and answers 503, beside one that serves', async () => {
  const allowed = await startApiProcess(tdb.url, { OUTBOX_RELAY: 'off' });
  procs.push(allowed);
  const admin = new Client(allowed.url, await signToken(secretBytes, { admin: true }));
  const productId = await admin.createProduct(1_000, 10);
  const buyer = await admin.createUser(10_000);

  const release = Math.max(...(await readdir(MIGRATIONS)).filter((f) => /^\d{4}_/.test(f)).map((f) => Number(f.slice(0, 4))));
  await tdb.query(`INSERT INTO schema_migrations (name, checksum) VALUES ($1, 'x')`, [`${String(release + 1).padStart(4, '0')}_from_a_newer_release.sql`]);
  await tdb.query('UPDATE schema_compatibility SET oldest_release = $1', [release + 1]);

  const old = await startApiProcess(tdb.url, {}, { until: 'listening' });
  procs.push(old);
  await eventually(() => old.output.some((l) => l.includes('too old for the database')), 'the old instance to say why it is not ready');
  const line = JSON.parse(old.output.find((l) => l.includes('too old for the database'))!);
  expect(line).toMatchObject({ release, oldestAllowed: release + 1 });

  const oldClient = new Client(old.url, admin.adminToken);
  expect((await oldClient.get('/health/live', { token: null })).status).toBe(200);
  const ready = await oldClient.get('/health/ready', { token: null });
  // The operator reads why, on the probe and on every refused request alike.
  const why = `this release (${release}) is older than the database allows (${release + 1} or newer): replace this instance with a newer release`;
  expect([ready.status, ready.body.detail]).toEqual([503, why]);
  for (const res of [
    await oldClient.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token }),
    await oldClient.get(`/products/${productId}`),
    await oldClient.get(`/users/${buyer.userId}/balance`, { token: buyer.token }),
  ]) {
    expect([res.status, res.body.code, res.body.detail]).toEqual([503, 'SERVICE_UNAVAILABLE', why]);
    expect(res.headers.get('retry-after')).not.toBeNull();
  }
  // The allowed instance serves on.
  const placed = await admin.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token });
  expect(placed.status).toBe(201);
  expect((await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM orders'))[0]!.n).toBe(1);
  // And the old one leaves cleanly when replaced.
  expect(await old.stop('SIGTERM')).toBe(0);
  procs.pop();
});
