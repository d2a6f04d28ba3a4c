import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';

let tdb: TestDatabase;
let app: TestApp;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

/** How often `partition` was analyzed by hand (not by autovacuum). */
async function analyzeCount(partition: string): Promise<number> {
  const [row] = await tdb.query<{ n: string }>(`SELECT coalesce(analyze_count, 0) AS n FROM pg_stat_user_tables WHERE relid = $1::regclass`, [partition]);
  return Number(row?.n ?? 0);
}

// The service's own step (service.ts, every 5 s): a partition that outgrew its statistics is
// analyzed without waiting for autovacuum, so that plans kept on it as empty are replaced.
test('the running service analyzes a day of keys that outgrew its statistics, within seconds', async () => {
  // Where a key written now lands: today's partition, as the database's clock has it.
  await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES (0, 'first', 'print', '{}')`);
  const [{ partition }] = await tdb.query<{ partition: string }>(`SELECT tableoid::regclass::text AS partition FROM idempotency_keys WHERE key = 'first'`) as [{ partition: string }];
  const before = await analyzeCount(partition);
  await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
                   SELECT g, 'grown-' || g, 'print', '{}'::jsonb FROM generate_series(1, 3000) g`);
  const deadline = Date.now() + 25_000; // a step every 5 s, and an idle backend reports its counts within 10 s
  let now = before;
  while (now === before && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    now = await analyzeCount(partition);
  }
  expect([partition.startsWith('idempotency_keys_p'), now]).toEqual([true, before + 1]);
}, 40_000);
