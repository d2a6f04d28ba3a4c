import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runBenchmark } from './driver.ts';
import { WORKLOAD_NAMES, type WorkloadName } from './run/report.ts';

/** Workloads that start servers of their own (a streaming replica, nats-server), and mixed-replica's baseline: only when asked for. */
const ACROSS_SERVERS: readonly WorkloadName[] = ['mixed-uncached', 'mixed-replica', 'nats-cluster'];

/** Every option: its default (a number's as a string; '' none; false a flag), what it sets (\n wraps it in --help), its argument's name. */
const OPTIONS = {
  workloads: [WORKLOAD_NAMES.filter((w) => !ACROSS_SERVERS.includes(w)).join(','), 'the workloads to run (below)', 'W,…'],
  connections: ['64', "HTTP keep-alive connections = the ceilings' concurrent callers and pgbench's clients"],
  pool: ['16', "the service's DATABASE_POOL_SIZE = the ceiling's pg pool"],
  'order-writes': ['2', "the service's ORDER_WRITES_IN_FLIGHT = the ceiling's"],
  duration: ['20', 'measured window of the timed workloads, seconds'],
  warmup: ['5', 'warm-up before it, seconds'],
  users: ['10000', 'users to seed'],
  products: ['1000', 'products to seed'],
  'hot-attempts': ['20000', 'hot-product attempts'],
  'replay-share': ['0.1', "keyed workloads: the share of orders answered 201 sent again; 0 measures the keys' own cost"],
  'keyed-phases': ['2', "after uniform's ABBA, a window (twice --duration) of keyed and unkeyed orders in alternate phases of N s,\neach side's CPU metered phase by phase (0: none)"],
  'refund-orders': ['10000', 'refund: orders to place, each then refunded in parts and cancelled'],
  'scale-factor': ['1', "--scale's sizes × N (e.g. 0.01 for a quick check)"],
  url: ['', 'benchmark a running service (needs DATABASE_URL and AUTH_SECRET)', 'URL'],
  out: ['', 'where results go (default bench/results)', 'DIR'],
  statements: ['8', "pg_stat_statements: the costliest N statements kept per window (a key's few statements are below 8)"],
  'cpu-prof': [false, "profile the service (V8 --cpu-prof): its self time by package and function in uniform's windows, in the report; with uniform-keyed, its windows too and the two per order side by side"],
  'service-only': [false, 'only the service runs, no pgbench or Node reference runs (quick alternated comparisons)'],
  scale: [false, 'first seed a year of history straight into the database (1,000,000 users, 100,000 products, 5,000,000\n' +
    'orders…: packages/adapters-postgres/src/bench/history-seed.ts); the load then draws --users users and\n--products products from the whole tables'],
  'unpartitioned-reference': [false, 'implies --scale; uniform and uniform-keyed each also run on the same rows in tables not partitioned'],
  help: [false, 'this'],
} as const;
type Name = keyof typeof OPTIONS;
type Flag = 'cpu-prof' | 'service-only' | 'scale' | 'help' | 'unpartitioned-reference';
const usage = (name: string, [value, what, arg = '']: readonly [string | false, string, string?], number = /^[\d.]+$/.test(String(value))) =>
  `  ${`--${name} ${number ? 'N' : arg}`.padEnd(18)} ` +
  `${what.replaceAll('\n', `\n${' '.repeat(21)}`)}${number ? ` (default ${value})` : ''}`;

const HELP = `pnpm bench [options]
${Object.entries(OPTIONS).map(([name, o]) => usage(name, o)).join('\n')}

Workloads (default all but ${ACROSS_SERVERS.join(' and ')}): ${WORKLOAD_NAMES.join(', ')}.
*-keyed: its twin's load, every order with its own Idempotency-Key, about --replay-share of the 201s sent again with the
same key and body (must replay the first answer; not orders, but requests in the CPU per request). With uniform, after
their ABBA windows, one window of keyed and unkeyed orders in alternate --keyed-phases, which judges the keyed target. slow-platform: uniform while every event delivery
takes 1 s to be answered. refund: orders (a fifth or more with a coupon), each refunded by its owner in 1–2 random parts
after its 201, then cancelled; balances, stock, coupons and events checked against what they were before.
mixed-replica: mixed, its catalog read on a streaming replica (the run's database then on a primary and replica of its own), set
against mixed-uncached, mixed on the primary alone; both without the product cache (PRODUCT_CACHE_MS=0).
nats-cluster: orders, 4 in 10 then cancelled, delivered to 3 nats-servers whose stream leader is SIGKILLed mid-window.

uniform and hot-product are set against pgbench (-M prepared, -j 2), the textbook order transaction on rows of its own, same
server, same run (without pgbench on PATH, the Node runners). Every run records the CPU per order of each process and
pg_stat_statements' top statements.`;

const { values: opt } = parseArgs({
  options: Object.fromEntries(Object.entries(OPTIONS).map(([name, [value]]) =>
    [name, value === false ? { type: 'boolean', default: false } : { type: 'string', ...(value ? { default: value } : {}) }])),
}) as unknown as { values: Record<Exclude<Name, Flag>, string> & Record<Flag, boolean> };
if (opt.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const n = (name: Name) => Number(opt[name]);
const workloads = opt.workloads.split(',').map((w) => w.trim()) as WorkloadName[];
for (const w of workloads) if (!WORKLOAD_NAMES.includes(w)) throw new Error(`unknown workload ${w}; known: ${WORKLOAD_NAMES.join(', ')}`);
const replayShare = n('replay-share');
if (!(replayShare >= 0 && replayShare <= 1)) throw new Error(`--replay-share must be between 0 and 1, not ${opt['replay-share']}`);
const keyedPhases = n('keyed-phases');
// At least a few phases a side, and phases far longer than a replay's 5–100 ms delay and a /proc sweep of every PostgreSQL process.
const interleaves = keyedPhases > 0 && workloads.includes('uniform') && workloads.includes('uniform-keyed');
if (!(keyedPhases >= 0) || (interleaves && !(keyedPhases >= 0.5 && keyedPhases * 4 <= n('duration') * 2))) {
  throw new Error(`--keyed-phases must be 0 or from 0.5 s to half --duration (${n('duration') / 2} s), not ${opt['keyed-phases']}`);
}
const statements = n('statements');
if (!(Number.isInteger(statements) && statements >= 1)) throw new Error(`--statements must be a whole number of at least 1, not ${opt.statements}`);

runBenchmark({
  workloads, connections: n('connections'), poolSize: n('pool'), orderWrites: n('order-writes'), replayShare,
  timed: { kind: 'timed', warmupMs: n('warmup') * 1000, durationMs: n('duration') * 1000 }, unpartitionedReference: opt['unpartitioned-reference'],
  hotAttempts: n('hot-attempts'), refundOrders: n('refund-orders'), users: n('users'), products: n('products'), url: opt.url || undefined,
  // Relative to where pnpm was started; by default the repository's bench/results (see its README.md).
  out: opt.out ? path.resolve(process.env.INIT_CWD ?? process.cwd(), opt.out) : fileURLToPath(new URL('../../../bench/results/', import.meta.url)),
  cpuProf: opt['cpu-prof'], serviceOnly: opt['service-only'], statements, keyedPhaseMs: keyedPhases * 1000, scaleFactor: opt.scale || opt['unpartitioned-reference'] ? n('scale-factor') : null,
}).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
