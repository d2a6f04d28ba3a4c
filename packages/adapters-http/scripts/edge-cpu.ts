// The HTTP edge's own CPU per request, in one process, with no sockets and no database: the app built
// as the service builds it (every hook, plugin and schema; the floor route on), its order book and
// read store replaced by answers in memory, requests injected (light-my-request). What it counts is
// the framework, the hooks, authentication, validation, serialization, metrics and the order
// decision, on the CPU of this process alone, so it moves far less with a busy machine than the
// benchmark's per-process figures. Run it alternately in worktrees of two commits to compare them:
//   node packages/adapters-http/scripts/edge-cpu.ts [requests per kind, default 10000] [only the kinds whose name has this]
// Tokens: one per user of 10,000, each first verified as in a benchmark's first seconds.
import { signToken } from '../src/auth.ts';
import { buildApp } from '../src/app.ts';
import { createMetrics } from '../src/metrics.ts';
import type { HttpDeps } from '../src/context.ts';
import { fingerprint, RecentOrderKeys, systemClock, uuidV7 } from '@shop/application';

const n = Number(process.argv[2] ?? 10_000);
const only = process.argv[3] ?? '';
const secret = new TextEncoder().encode('x'.repeat(32));
const products = Array.from({ length: 1000 }, (_, i) => ({ productId: i + 1, name: `bench product ${i + 1}`, price: 1000 + (i % 49) * 1000, stock: 1_000_000 }));
// A replay's stored answer: the order the key names, as the snapshot reads it with the key. The app
// of 'a replay' has no RecentOrderKeys: a replay of a key another instance completed, read from the
// store. 'a replay from memory' is one the service answers from memory (ADR 0016): 100 users' keys,
// each read from the store once in the warm-up, as the service keeps them.
const replayItems = [{ productId: 7, quantity: 1 }, { productId: 9, quantity: 2 }];
const replayOrder = { orderId: uuidV7.next(), userId: 0, status: 'PAID', items: replayItems.map((i) => ({ ...i, unitPrice: 1000, lineAmount: 1000 * i.quantity, refundedQuantity: 0 })),
  totalAmount: 3000, discountAmount: 0, paidAmount: 3000, couponId: null, createdAt: new Date(), cancelledAt: null, refundedAmount: 0 };
const book = {
  snapshot: async (userId: number, ids: readonly number[], _coupon: number | null, key: string | null) => ({
    balance: 10_000_000, products: ids.map((id) => ({ productId: id, price: products[id - 1]!.price, stock: 1_000_000 })), held: null,
    ...(key === 'replay'
      ? { completed: { fingerprint: fingerprint('POST /orders', { userId, items: replayItems, couponId: null }), result: { orderId: replayOrder.orderId } },
          keyedOrder: { ...replayOrder, userId } }
      : { completed: null, keyedOrder: null }),
  }),
  write: async () => 'written' as const,
  keyState: async () => ({ state: 'free' as const }),
  changeSnapshot: async () => ({ order: null, key: { state: 'free' as const } }),
};
const metrics = createMetrics({ outboxStats: async () => ({ backlog: 0, failing: 0, oldestUndeliveredSeconds: 0 }) });
const deps = {
  book, reads: { product: async (id: number) => products[id - 1] ?? null }, ids: uuidV7, clock: systemClock, authSecret: secret, metrics,
  checkReady: async () => undefined, wakeRelay: () => undefined, events: { recorded: () => undefined }, cancelDays: 7,
} as unknown as HttpDeps;
// As the benchmark starts the service: no per-address limit, the per-user one on (never reached), the in-flight cap on.
const options = { limits: { perIp: null, perUser: { perSecond: 1e9, burst: 1e9 }, maxInFlight: 4096 }, benchFloorRoute: true };
const app = await buildApp(deps, options);
const remembering = await buildApp({ ...deps, recentKeys: new RecentOrderKeys(systemClock, { maxEntries: 10_000, keepMs: 600_000 }) }, options);
await Promise.all([app.ready(), remembering.ready()]);
const tokens = await Promise.all(Array.from({ length: 10_000 }, (_, i) => signToken(secret, { userId: i + 1 })));
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const json = { 'content-type': 'application/json' };
const kinds = {
  'POST /orders': () => {
    const userId = 1 + Math.floor(rand() * 10_000);
    const ids = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => 1 + Math.floor(rand() * 1000)))];
    return { method: 'POST' as const, url: '/orders', headers: { ...json, authorization: `Bearer ${tokens[userId - 1]}` },
      payload: JSON.stringify({ userId, items: ids.map((productId) => ({ productId, quantity: 1 })) }) };
  },
  'POST /orders, keyed': () => {
    const userId = 1 + Math.floor(rand() * 10_000);
    const ids = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => 1 + Math.floor(rand() * 1000)))];
    return { method: 'POST' as const, url: '/orders', headers: { ...json, authorization: `Bearer ${tokens[userId - 1]}`, 'idempotency-key': `k-${rand()}` },
      payload: JSON.stringify({ userId, items: ids.map((productId) => ({ productId, quantity: 1 })) }) };
  },
  'POST /orders, a replay': () => {
    const userId = 1 + Math.floor(rand() * 10_000);
    return { method: 'POST' as const, url: '/orders', headers: { ...json, authorization: `Bearer ${tokens[userId - 1]}`, 'idempotency-key': 'replay' },
      payload: JSON.stringify({ userId, items: replayItems }) };
  },
  'POST /orders, a replay from memory': () => {
    const userId = 1 + Math.floor(rand() * 100);
    return { method: 'POST' as const, url: '/orders', headers: { ...json, authorization: `Bearer ${tokens[userId - 1]}`, 'idempotency-key': 'replay' },
      payload: JSON.stringify({ userId, items: replayItems }) };
  },
  'GET /products/{id}': () => ({ method: 'GET' as const, url: `/products/${1 + Math.floor(rand() * 1000)}` }),
  'POST /bench/floor': () => ({ method: 'POST' as const, url: '/bench/floor', headers: json, payload: JSON.stringify({ userId: 5, items: [{ productId: 1, quantity: 1 }] }) }),
};
for (const [name, make] of Object.entries(kinds).filter(([name]) => name.includes(only))) {
  const to = name.endsWith('from memory') ? remembering : app;
  for (let i = 0; i < 2_000; i++) await to.inject(make());
  const before = process.cpuUsage();
  let refused = 0;
  for (let i = 0; i < n; i++) if ((await to.inject(make())).statusCode >= 300) refused++;
  const used = process.cpuUsage(before);
  process.stdout.write(`${name}: ${((used.user + used.system) / n).toFixed(1)} µs CPU per request${refused ? ` (${refused} not 2xx)` : ''}\n`);
}
await Promise.all([app.close(), remembering.close()]);
