import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { eventually } from '../../../test/support/eventually.ts';
import { Client } from '../../../test/support/http.ts';
import { makeTempDir } from '../../../test/support/temp.ts';
import { startApiProcess } from '../../../test/support/processes.ts';

/** The README's run command: no DATABASE_URL, no AUTH_SECRET — embedded PostgreSQL, demo data, printed tokens. */
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const printed = (output: string[], name: string) => {
  const line = output.find((l) => l.includes(`export ${name}=`));
  expect(line, `${name} printed at start`).toBeDefined();
  return line!.split('=')[1]!.split(/\s/)[0]!;
};

test('starts on an embedded PostgreSQL, seeds a demo shop, prints working tokens, and keeps data across restarts', async () => {
  const dataDir = makeTempDir('order-service-embedded-');
  dirs.push(dataDir);
  const env = { DATABASE_URL: '', AUTH_SECRET: '', DATA_DIR: dataDir };

  const first = await startApiProcess('', env);
  const userToken = printed(first.output, 'USER_TOKEN');
  const adminToken = printed(first.output, 'ADMIN_TOKEN');
  expect(first.output.some((l) => l.includes('curl'))).toBe(true);
  const client = new Client(first.url, adminToken);

  const products = await client.get('/products', { token: null });
  expect(products.status).toBe(200);
  expect(products.body.items.length).toBeGreaterThanOrEqual(3);
  const coupons = await client.get('/users/1/coupons', { token: userToken });
  expect(coupons.body.items).toHaveLength(1);
  const order = await client.post(
    '/orders',
    { userId: 1, items: [{ productId: products.body.items[0].productId, quantity: 1 }], couponId: coupons.body.items[0].couponId },
    { token: userToken },
  );
  expect(order.status).toBe(201);
  // No DATA_PLATFORM_URL: the event goes to the local NDJSON sink, with a log line.
  const sink = path.join(dataDir, 'events.ndjson');
  let lines: any[] = [];
  await eventually(async () => {
    lines = (await readFile(sink, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return lines.some((e) => e.data.orderId === order.body.orderId);
  }, 'the event in the local sink', 10_000);
  expect(lines.filter((e) => e.data.orderId === order.body.orderId)).toMatchObject([{ type: 'order.paid', data: { paidAmount: order.body.paidAmount } }]);
  // Logged after the append, and read from the child's stdout pipe after that: waited for, not raced.
  await eventually(() => first.output.some((l) => l.includes('event written to the local sink')), 'the sink log line', 10_000);
  expect(await first.stop('SIGTERM')).toBe(0);

  const second = await startApiProcess('', env);
  try {
    const again = new Client(second.url, adminToken);
    // Same secret (kept in DATA_DIR), same data, no second seeding.
    const kept = await again.get(`/orders/${order.body.orderId}`, { token: userToken });
    expect(kept.status).toBe(200);
    expect(kept.body).toEqual({ ...order.body, refunds: [] });
    expect((await again.get('/products?limit=100', { token: null })).body.items).toHaveLength(products.body.items.length);
  } finally {
    expect(await second.stop('SIGTERM')).toBe(0);
  }
});
