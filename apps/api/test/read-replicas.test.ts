import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type Client, type TestApp } from '../../../test/support/http.ts';
import { startReplicatedCluster, type ReplicatedCluster } from '../../../test/support/replication.ts';

/**
 * DATABASE_READ_URL against a real primary and a real streaming replica started here (contract
 * v1.2, ADR 0013). Two API instances on them: `strict` reads the catalog from the replica only
 * within 300 ms of the primary, `lenient` within a minute, so that one shows when a lagging replica
 * is skipped and the other, deterministically, that catalog reads do go to the replica.
 */
let cluster: ReplicatedCluster;
let strict: TestApp;
let lenient: TestApp;

beforeAll(async () => {
  cluster = await startReplicatedCluster({ replicas: 1 });
  const env = { DATABASE_READ_URL: cluster.replicaUrls[0]!, OUTBOX_RELAY: 'off', TOP_SELLERS_CACHE_MS: '0' };
  strict = await startTestApp(cluster.primaryUrl, { ...env, DATABASE_READ_MAX_LAG_MS: '300' });
  lenient = await startTestApp(cluster.primaryUrl, { ...env, DATABASE_READ_MAX_LAG_MS: '60000' });
  await cluster.caughtUp(0);
}, 120_000);
afterAll(async () => {
  await strict?.close();
  await lenient?.close();
  await cluster?.stop();
});

/** A Prometheus sample's value, 0 when absent. */
async function metric(client: Client, name: string, labels: string): Promise<number> {
  const text: string = (await client.get('/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
const healthy = (app: TestApp) => metric(app.client, 'db_replica_healthy', 'replica="0"');
const readsOn = (app: TestApp, on: 'replica' | 'primary') => metric(app.client, 'db_replica_reads_total', `on="${on}"`);

describe('reads on a streaming replica', () => {
  test('catalog reads are served by the replica; a user reads their own writes through the other instance, under concurrent orders', async () => {
    const admin = strict.client;
    const productId = await admin.createProduct(1_000, 100_000);
    const buyers = await Promise.all(Array.from({ length: 12 }, () => admin.createUser(1_000_000)));
    await cluster.caughtUp(0);
    await eventually(async () => (await healthy(strict)) === 1 && (await healthy(lenient)) === 1, 'the replica read from');

    const before = await readsOn(lenient, 'replica');
    const primaryBefore = await readsOn(lenient, 'primary');
    for (let i = 0; i < 5; i++) expect((await lenient.client.get(`/products/${productId}`)).status).toBe(200);
    expect((await lenient.client.get('/products?limit=5')).status).toBe(200);
    // The product cache (PRODUCT_CACHE_MS) reads the product once for the five, on the replica like the page.
    expect(await readsOn(lenient, 'replica')).toBeGreaterThanOrEqual(before + 2);
    expect(await readsOn(lenient, 'primary')).toBe(primaryBefore);

    // Each buyer orders through one instance and at once reads their orders and balance through the other.
    await Promise.all(
      buyers.map(async (buyer, n) => {
        const [writes, reads] = n % 2 ? [strict.client, lenient.client] : [lenient.client, strict.client];
        let balance = 1_000_000;
        for (let k = 0; k < 6; k++) {
          const placed = await writes.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token });
          expect(placed.status, JSON.stringify(placed.body)).toBe(201);
          balance -= 1_000;
          const mine = await reads.get(`/users/${buyer.userId}/orders?limit=1`, { token: buyer.token });
          expect(mine.body.items[0]?.orderId, 'the order just placed, read through the other instance').toBe(placed.body.orderId);
          expect((await reads.get(`/users/${buyer.userId}/balance`, { token: buyer.token })).body.balance).toBe(balance);
          expect((await reads.get(`/orders/${placed.body.orderId}`, { token: buyer.token })).status).toBe(200);
        }
      }),
    );
  });

  test('a replica whose replay is paused serves a stale catalog only within DATABASE_READ_MAX_LAG_MS; orders are decided on the primary', async () => {
    const admin = strict.client;
    const productId = await admin.createProduct(1_000, 5);
    const buyer = await admin.createUser(100_000);
    await cluster.caughtUp(0);
    await eventually(async () => (await healthy(strict)) === 1 && (await lenient.client.get(`/products/${productId}`)).status === 200, 'the replica has the product');

    await cluster.pauseReplay(0);
    try {
      expect((await admin.patch(`/admin/products/${productId}`, { price: 2_000, stock: 0 })).status).toBe(200);
      // Within a minute of the primary the lenient instance still reads the replica, which has not replayed the change.
      expect((await lenient.client.get(`/products/${productId}`)).body).toMatchObject({ price: 1_000, stock: 5 });
      // An order is decided on the primary's stock, whatever the catalog showed.
      const refused = await lenient.client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token });
      expect([refused.status, refused.body.code]).toEqual([400, 'OUT_OF_STOCK']);
      // Past 300 ms behind, the strict instance reads the primary instead.
      await eventually(async () => (await healthy(strict)) === 0, 'the strict instance to stop reading the lagging replica', 10_000);
      expect((await strict.client.get(`/products/${productId}`)).body).toMatchObject({ price: 2_000, stock: 0 });
      expect(await metric(strict.client, 'db_replica_lag_ms', 'replica="0"')).toBeGreaterThan(300);
    } finally {
      await cluster.resumeReplay(0);
    }
    await eventually(async () => (await lenient.client.get(`/products/${productId}`)).body.price === 2_000, 'the replica to replay the change');
    await eventually(async () => (await healthy(strict)) === 1, 'the strict instance to read the replica again', 10_000);
  });

  test('a replica stopped under load: every catalog read still answered, from the primary, and the replica read again once back', async () => {
    const productId = await strict.client.createProduct(500, 10);
    await cluster.caughtUp(0);
    let running = true;
    const statuses: number[] = [];
    const load = Promise.all(
      [strict, lenient].flatMap((app) =>
        Array.from({ length: 4 }, async (_, i) => {
          while (running) statuses.push((await app.client.get(i % 2 ? `/products/${productId}` : '/products?limit=20')).status);
        }),
      ),
    );
    await eventually(() => statuses.length > 50, 'reads under way');
    const primaryBefore = await readsOn(lenient, 'primary');
    await cluster.stopReplica(0);
    await eventually(async () => (await healthy(lenient)) === 0 && (await healthy(strict)) === 0, 'the stopped replica no longer read', 10_000);
    const answeredWhileDown = statuses.length;
    await eventually(() => statuses.length > answeredWhileDown + 50, 'reads answered while the replica is down');
    expect(await readsOn(lenient, 'primary')).toBeGreaterThan(primaryBefore);

    await cluster.startReplica(0);
    await cluster.caughtUp(0);
    await eventually(async () => (await healthy(lenient)) === 1 && (await healthy(strict)) === 1, 'the replica read again once back', 20_000);
    const replicaAfter = await readsOn(lenient, 'replica');
    await eventually(async () => (await readsOn(lenient, 'replica')) > replicaAfter, 'catalog reads on the replica again');
    running = false;
    await load;
    expect(statuses.filter((s) => s !== 200), 'catalog reads not answered 200').toEqual([]);
  });
});
