import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { Client, secretBytes, TEST_AUTH_SECRET } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

let tdb: TestDatabase;
let api: ApiProcess;

beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startApiProcess(tdb.url, {
    LOG_LEVEL: 'info',
    DATABASE_POOL_SIZE: '1',
    DATABASE_ACQUIRE_TIMEOUT_MS: '300',
    DATABASE_STATEMENT_TIMEOUT_MS: '1000',
  });
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

test("a request's id is returned as x-request-id and carried into its log lines; no token or secret is ever logged", async () => {
  const admin = await signToken(secretBytes, { admin: true });
  const client = new Client(api.url, admin);
  const buyer = await client.createUser(1_000);

  // A client's own id is kept and echoed.
  const traced = await client.get('/products', { token: null, headers: { 'x-request-id': 'trace-4711' } });
  expect(traced.headers.get('x-request-id')).toBe('trace-4711');

  // A request that fails and is logged: the one connection is held by a stuck charge.
  const holder = new pg.Client({ connectionString: tdb.url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [buyer.userId]);
  let failedId: string | null;
  try {
    const stuck = client.post(`/users/${buyer.userId}/balance/charge`, { amount: 1 }, { token: buyer.token });
    await new Promise((r) => setTimeout(r, 100));
    const failed = await client.get(`/users/${buyer.userId}/balance`, { token: buyer.token });
    expect(failed.status).toBe(503);
    failedId = failed.headers.get('x-request-id');
    expect(failedId).toMatch(/^[0-9a-f-]{36}$/);
    await stuck;
  } finally {
    await holder.query('ROLLBACK');
    await holder.end();
  }
  await new Promise((r) => setTimeout(r, 200)); // let the log lines reach the pipe

  const entries = api.output.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  const ofFailed = entries.filter((e) => e.reqId === failedId);
  expect(ofFailed.length).toBeGreaterThanOrEqual(1);
  expect(ofFailed.every((e) => e.level === 50 && e.msg === 'request failed')).toBe(true);

  const everything = api.output.join('\n');
  for (const secret of [admin, buyer.token, TEST_AUTH_SECRET]) expect(everything).not.toContain(secret);
  expect(everything).not.toMatch(/Bearer [A-Za-z0-9_-]+\./);
});
