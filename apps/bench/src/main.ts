import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runBenchmark } from './driver.ts';
import { WORKLOAD_NAMES, type WorkloadName } from './run/report.ts';

const HELP = `pnpm bench [options]
  --workloads  uniform,uniform-keyed,hot-product,hot-product-keyed,coupon-burst,mixed,slow-platform,refund
               (default: all)
               uniform-keyed / hot-product-keyed = the same load as their twin, every order with
               its own Idempotency-Key, and about --replay-share of those answered 201 sent again
               shortly after with the same key and body (must replay the first answer; not counted
               as orders); the report sets each against its unkeyed twin of the same run
               slow-platform = uniform while every event delivery takes 1 s to be answered
               refund = uniform orders, every second one cancelled by its owner as soon as its 201
               arrives, over the same connections (--refund-orders orders, about half as many
               cancellations); checks each cancellation against the database and the receiver
  --connections N    HTTP keep-alive connections = the ceilings' concurrent callers and pgbench's
                     clients (default 64)
  --pool N           the service's DATABASE_POOL_SIZE = the ceiling's pg pool (default 16)
  --order-writes N   the service's ORDER_WRITES_IN_FLIGHT = the ceiling's (default 2)
  --duration S       measured window of the timed workloads, seconds (default 20)
  --warmup S         warm-up before it, seconds (default 5)
  --users N          users to seed (default 10000)   --products N   products to seed (default 1000)
  --hot-attempts N   hot-product attempts (default 20000)
  --replay-share F   keyed workloads: the share of orders answered 201 sent again (default 0.1);
                     0 measures what the keys themselves cost, without the replays' requests
  --refund-orders N  refund: orders to place, every second one then cancelled (default 10000)
  --url URL          benchmark a running service (needs DATABASE_URL and AUTH_SECRET)
  --out DIR          where results go (default bench/results)
  --cpu-prof         profile the service (V8 --cpu-prof) and list its hottest functions
  --scale            first seed a year of history straight into the database: 1,000,000 users,
                     100,000 products, 5,000,000 orders with their items, ledger, coupon copies,
                     rollup and last week's events (apps/bench/src/run/scale.ts); the load then
                     draws --users users and --products products at random from the whole tables
  --scale-factor F   --scale's sizes × F (default 1; e.g. 0.01 for a quick check)

uniform and hot-product are measured against pgbench (-M prepared, -j 2) running the textbook
order transaction on the same server in the same run, on users and products of its own; without
pgbench on PATH, against the Node runners (the report says so). Every run records the CPU per
order of the service, PostgreSQL and the load generator, and pg_stat_statements' top statements.`;

const { values: opt } = parseArgs({
  options: {
    workloads: { type: 'string', default: WORKLOAD_NAMES.join(',') },
    connections: { type: 'string', default: '64' },
    pool: { type: 'string', default: '16' },
    'order-writes': { type: 'string', default: '2' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    users: { type: 'string', default: '10000' },
    products: { type: 'string', default: '1000' },
    'hot-attempts': { type: 'string', default: '20000' },
    'replay-share': { type: 'string', default: '0.1' },
    'refund-orders': { type: 'string', default: '10000' },
    url: { type: 'string' },
    out: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    scale: { type: 'boolean', default: false },
    'scale-factor': { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const workloads = opt.workloads.split(',').map((w) => w.trim()) as WorkloadName[];
for (const w of workloads) if (!WORKLOAD_NAMES.includes(w)) throw new Error(`unknown workload ${w}; known: ${WORKLOAD_NAMES.join(', ')}`);
const replayShare = Number(opt['replay-share']);
if (!(replayShare >= 0 && replayShare <= 1)) throw new Error(`--replay-share must be between 0 and 1, not ${opt['replay-share']}`);
const [connections, poolSize, orderWrites, durationS, warmupS] = [opt.connections, opt.pool, opt['order-writes'], opt.duration, opt.warmup].map(Number) as
  [number, number, number, number, number];

runBenchmark({
  workloads,
  connections,
  poolSize,
  orderWrites,
  timed: { kind: 'timed', warmupMs: warmupS * 1000, durationMs: durationS * 1000 },
  hotAttempts: Number(opt['hot-attempts']),
  refundOrders: Number(opt['refund-orders']),
  replayShare,
  users: Number(opt.users),
  products: Number(opt.products),
  url: opt.url,
  // Relative to where pnpm was started; by default the repository's bench/results (see its README.md).
  out: opt.out ? path.resolve(process.env.INIT_CWD ?? process.cwd(), opt.out) : fileURLToPath(new URL('../../../bench/results/', import.meta.url)),
  cpuProf: opt['cpu-prof'],
  scaleFactor: opt.scale ? Number(opt['scale-factor']) : null,
  shown: { connections, poolSize, orderWrites, durationS, warmupS },
}).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
