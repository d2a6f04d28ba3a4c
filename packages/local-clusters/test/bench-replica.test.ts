import { afterEach, expect, test } from 'vitest';
import { addProducts, queryServer, scratchDatabase } from '@shop/adapters-postgres/bench';
import { eventually } from '../src/index.ts';
import { replicaReadsWorkload, startBenchReplication, type ScalingTarget } from '../src/bench/index.ts';
import { TEST_AUTH_SECRET } from '../../../test/support/http.ts';
import { startApiProcess } from '../../../test/support/processes.ts';

/**
 * The benchmark's mixed-replica support, on real processes: startBenchReplication's primary and
 * streaming replica, a database made on the primary as the benchmark makes its own, apps/api started
 * again by the workload with DATABASE_READ_URL on the replica; catalog reads between the window's
 * edges are counted on the replica, and the service's read pool is connected there.
 */
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => undefined);
});

test('the benchmark starts a streaming replica of its database, and the workload sends catalog reads to it', async () => {
  const replication = await startBenchReplication();
  cleanups.push(() => replication.stop());
  expect(replication.description).toMatch(/PostgreSQL \d+/);
  const database = await scratchDatabase(replication.primaryUrl);
  cleanups.push(() => database.close());
  const env = { OUTBOX_RELAY: 'off' };
  let api = await startApiProcess(database.url, env);
  cleanups.push(() => api.stop());
  const target: ScalingTarget = {
    get baseUrl() {
      return api.url;
    },
    authSecret: TEST_AUTH_SECRET,
    pool: database.db.pool,
    replica: replication.replicaOf(database.url),
    receiver: null,
    async restart(extra) {
      await api.stop();
      api = await startApiProcess(database.url, { ...env, ...extra });
    },
  };
  const [productId] = await addProducts(database.db.pool, [{ name: 'replicated', price: 1_000, stock: 10 }]);
  const fixture = { mixedCouponId: 0, couponHolders: [] as number[] };

  const state = await replicaReadsWorkload.before(target, fixture);
  expect(fixture.mixedCouponId, 'a coupon of its own for its orders').toBeGreaterThan(0);
  const read = () => fetch(`${target.baseUrl}/products/${productId}`).then((r) => r.status);
  await eventually(async () => (await read()) === 200, 'the product on the replica');
  await replicaReadsWorkload.edge(state);
  for (let i = 0; i < 20; i++) expect(await read()).toBe(200);
  await replicaReadsWorkload.edge(state);
  const sessions = await queryServer<{ n: number }>(
    target.replica!.url,
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'order-service-reads'",
  );
  expect(sessions[0]!.n, "the service's read pool, connected to the replica").toBeGreaterThan(0);

  const { replicaReads: r } = await replicaReadsWorkload.after(state);
  // Every catalog read counted; on a busy machine a lag check may find the replica late for a moment, and a read or two goes to the primary.
  expect(r.onReplica + r.onPrimary).toBe(20);
  expect(r.onReplica).toBeGreaterThanOrEqual(15);
  expect(r.requests).toBeGreaterThanOrEqual(20);
  expect(r.shareOfRequests).toBeGreaterThan(0.5);
  expect(r.replicaCpuMs, "the replica's processes, on this machine").not.toBeNull();
  expect(r.replicaProcesses).toBeGreaterThan(1);
  const summary = { requests: 22, requestsPerSecond: 22, ordersPerSecond: 0, outcomes: { '200': 22 } };
  expect(replicaReadsWorkload.check({ run: { workload: 'mixed-replica', runner: 'service', summary, replicaReads: r } })).toEqual([]);
  // after() started the service again, on the primary alone.
  expect(await read()).toBe(200);
  expect((await fetch(`${target.baseUrl}/health/ready`)).status).toBe(200);
});
