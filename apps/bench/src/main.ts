import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { auditInvariants } from '@shop/adapters-postgres';
import { runInChild, progressBar } from './run/children.ts';
import { observeLockWaits, quiesce, checkEvents, waitForDelivery } from './run/observe.ts';
import { Meter, processTicks, type MeasuredWindow } from './run/meter.ts';
import { findPgbench, pgbenchVersion, runPgbench } from './run/pgbench.ts';
import { isKeyed, KEYED_TWIN, type LoadResult, type Shape, type WindowEdge, type WorkloadName } from './run/protocol.ts';
import { keyedVsUnkeyed, markdownReport, statementLines, type Report, type RunRecord } from './run/report.ts';
import { BURST_COUPONS, HOT_STOCK, seedPgbenchFixture, seedThroughApi, type PgbenchFixture } from './run/seed.ts';
import { scaleAuditOptions, scaleMarkdown, seedAtScale, type ScaleSeeded } from './run/scale-seed.ts';
import { latenciesOf, summarise } from './run/stats.ts';
import { cdfPoints, COLORS, latencyChart, throughputChart, type Series } from './run/svg.ts';
import { summariseCpuProfiles } from './run/profile.ts';
import { checkRefund, countCancelled, refundWindow } from './run/refund.ts';
import { startTarget } from './run/target.ts';

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
                     rollup and last week's events (apps/bench/src/run/scale-seed.ts); the load then
                     draws --users users and --products products at random from the whole tables
  --scale-factor F   --scale's sizes × F (default 1; e.g. 0.01 for a quick check)

uniform and hot-product are measured against pgbench (-M prepared, -j 2) running the textbook
order transaction on the same server in the same run, on users and products of its own; without
pgbench on PATH, against the Node runners (the report says so). Every run records the CPU per
order of the service, PostgreSQL and the load generator, and pg_stat_statements' top statements.`;

const { values: opt } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'uniform,uniform-keyed,hot-product,hot-product-keyed,coupon-burst,mixed,slow-platform,refund' },
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
const known: WorkloadName[] = ['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed', 'coupon-burst', 'mixed', 'slow-platform', 'refund'];
for (const w of workloads) if (!known.includes(w)) throw new Error(`unknown workload ${w}; known: ${known.join(', ')}`);
const connections = Number(opt.connections);
const poolSize = Number(opt.pool);
const orderWrites = Number(opt['order-writes']);
const timed: Shape = { kind: 'timed', warmupMs: Number(opt.warmup) * 1000, durationMs: Number(opt.duration) * 1000 };
const hotAttempts = { kind: 'count', attempts: Number(opt['hot-attempts']) } as const satisfies Shape;
// refund: its requests, orders and cancellations alike; about refundOrders orders, every second one
// cancelled (an order whose 201 arrives as the loop ends is cancelled after it, unmeasured).
const refundOrders = Number(opt['refund-orders']);
const replayShare = Number(opt['replay-share']);
if (!(replayShare >= 0 && replayShare <= 1)) throw new Error(`--replay-share must be between 0 and 1, not ${opt['replay-share']}`);
const refundShape = { kind: 'count', attempts: refundOrders + Math.floor(refundOrders / 2) } as const satisfies Shape;

async function main(): Promise<number> {
  const startedAt = new Date();
  process.stderr.write('starting the service…\n');
  const cpuProfileDir = opt['cpu-prof'] ? mkdtempSync(path.join(os.tmpdir(), 'order-service-prof-')) : null;
  const target = await startTarget(opt.url, poolSize, cpuProfileDir, orderWrites);
  // Interrupted: still stop the service and the embedded PostgreSQL it started.
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted; stopping the service…\n');
    void target.close().finally(() => process.exit(130));
  });
  const violations: string[] = [];
  const runs: RunRecord[] = [];
  let dir: string | null = null;
  try {
    const scaled: ScaleSeeded | null = opt.scale ? await seedAtScale(target, Number(opt['scale-factor']), { users: Number(opt.users), products: Number(opt.products) }) : null;
    const seedBar = progressBar('seeding through the admin API');
    const seeded = scaled ?? await seedThroughApi(
      target.baseUrl,
      target.authSecret,
      { users: Number(opt.users), products: Number(opt.products), couponHolders: Math.floor(Number(opt.users) / 5) },
      (done, total) => seedBar(done, total, done >= total ? 'done' : 'seeding'),
    );
    const { fixture } = seeded;
    const seed = 42;

    // pgbench's own users and products, after everything else so each set's ids are consecutive.
    const pgbenchBin = findPgbench();
    let pgFixture: PgbenchFixture | null = null;
    if (!pgbenchBin) process.stderr.write('pgbench is not on PATH: the ceilings fall back to the Node runners\n');
    else if (workloads.includes('uniform') || workloads.includes('hot-product')) {
      const bar = progressBar("seeding pgbench's own rows");
      pgFixture = await seedPgbenchFixture(
        target.baseUrl,
        target.authSecret,
        { users: fixture.userIds.length, products: fixture.productIds.length },
        seeded.initialStock,
        (done, total) => bar(done, total, done >= total ? 'done' : 'seeding'),
      );
    }
    const meter = await Meter.create(target.pool, target.servicePid, target.statements);
    if (meter.postmasterPid === null) process.stderr.write('PostgreSQL runs elsewhere: its CPU is not measured\n');
    if (!target.statements) process.stderr.write('pg_stat_statements is not loaded on this server: no statement figures\n');

    /** Runs a child with its measured window metered: CPU at its edges, pg_stat_statements in between. */
    type Metered = { result: LoadResult; window: MeasuredWindow | null };
    const metered = async (go: (onEdge: (edge: WindowEdge, pid: number) => void) => Promise<LoadResult>): Promise<Metered> => {
      let window: MeasuredWindow | null = null;
      const result = await go((edge, pid) => {
        if (edge === 'start') {
          window = meter.window(() => processTicks(pid));
          window.begin();
        } else window?.finish();
      });
      return { result, window };
    };
    /** The window's CPU and statements, attached to the run (hot runs: orders = units sold; refund: operations). */
    const attachCost = async (run: RunRecord, window: MeasuredWindow | null, orders = run.summary.orders, unit?: 'operation') => {
      if (!window) return;
      const { cpu, statements } = await window.result();
      if (cpu) run.cost = { cpu, orders, requests: run.summary.requests, ...(unit ? { unit } : {}) };
      run.statements = statements;
      for (const l of statementLines(run)) process.stderr.write(`${l}\n`);
    };

    const record = async (workload: WorkloadName, runner: RunRecord['runner'], label: string, m: Metered, extra: Partial<RunRecord> = {}) => {
      const { result } = m;
      const run: RunRecord = { workload, runner, label, summary: summarise(result), samples: result.samples, ...extra };
      runs.push(run);
      // refund: CPU per operation, an order or a cancellation that succeeded.
      if (workload === 'refund') await attachCost(run, m.window, refundWindow(result.samples, result.windowMs).operations, 'operation');
      else await attachCost(run, m.window);
      const fiveXX = Object.entries(run.summary.outcomes).filter(([k]) => k.startsWith('5') || k.startsWith('0'));
      if (fiveXX.length > 0) violations.push(`${label}: server errors or dropped requests ${JSON.stringify(Object.fromEntries(fiveXX))}`);
      if (isKeyed(workload)) {
        const r = result.replays;
        if (!r) violations.push(`${label}: the load process reported no replays`);
        else {
          run.replays = r;
          if (r.mismatched > 0) {
            violations.push(
              `${label}: ${r.mismatched} of ${r.sent} replays did not return the first 201 (same body, idempotent-replayed: true): ` +
                `${JSON.stringify(r.mismatchKinds)}; e.g. ${r.examples.slice(0, 2).join(' | ')}`,
            );
          }
          if (r.firstAnswersMarkedReplayed > 0) {
            violations.push(`${label}: ${r.firstAnswersMarkedReplayed} orders with a fresh Idempotency-Key were answered as replays`);
          }
          if (replayShare > 0 && r.sent === 0 && (run.summary.outcomes['201'] ?? 0) > 0) violations.push(`${label}: orders succeeded but none was replayed`);
        }
      }
      return run;
    };
    // Each run starts with the previous run's events delivered, so the relay's catch-up does not
    // compete with the next measurement, and with its tables vacuumed and its pages written.
    const settle = () => quiesce(target.pool);
    const service = (workload: WorkloadName, shape: Shape) =>
      metered((onEdge) =>
        runInChild('load-process.ts', { workload, baseUrl: target.baseUrl, authSecret: target.authSecret, connections, shape, fixture, seed, replayShare }, `${workload} · service (HTTP)`, onEdge),
      );
    const ceiling = (workload: 'uniform' | 'hot-product', variant: 'service-sql' | 'plain-row-lock', shape: Shape, productIds: readonly number[]) =>
      metered((onEdge) =>
        runInChild(
          'ceiling-process.ts',
          { workload, variant, databaseUrl: target.databaseUrl, connections, poolSize, orderWrites, shape, userIds: fixture.userIds, productIds, seed },
          `${workload} · ${variant === 'service-sql' ? 'same SQL, one Node process' : 'plain row lock, one Node process'}`,
          onEdge,
        ),
      );
    /** The database's own limit: pgbench, the textbook transaction, on its own rows. */
    const pgbenchCeiling = async (workload: 'uniform' | 'hot-product', shape: Shape) => {
      if (!pgbenchBin || !pgFixture) return;
      await settle();
      const label = `${workload} · pgbench, textbook transaction${workload === 'hot-product' ? ', hot row locked first' : ''}`;
      const ordersOfItsUsers = async () =>
        (await target.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE user_id BETWEEN $1 AND $2', [pgFixture!.users.first, pgFixture!.users.last])).rows[0]!.n;
      const before = await ordersOfItsUsers();
      const p = await runPgbench({ bin: pgbenchBin, workload, databaseUrl: target.databaseUrl, clients: connections, threads: PGBENCH_THREADS, shape, fixture: pgFixture, pool: target.pool, meter, label });
      const base = summarise({ samples: p.samples, windowMs: p.windowMs, transportErrors: 0 });
      const outcomes: Record<string, number> =
        workload === 'uniform' ? { committed: p.transactions } : { 'sold (committed)': p.orders, 'out of stock (rolled back)': p.transactions - p.orders };
      const summary = { ...base, orders: p.orders, ordersPerSecond: Math.round((p.orders / (p.windowMs / 1000)) * 100) / 100, outcomes };
      const run: RunRecord = {
        workload,
        runner: 'pgbench',
        label,
        summary,
        samples: p.samples,
        pgbench: { tps: p.tps, transactions: p.transactions, command: p.command, summary: p.summary },
        ...(p.salesPerSecond !== undefined ? { salesPerSecond: p.salesPerSecond } : {}),
      };
      runs.push(run);
      await attachCost(run, p.window, p.orders);
      for (const problem of p.problems) violations.push(`${label}: ${problem}`);
      // Every transaction pgbench processed left exactly one order of its users.
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(p.summary.join('\n'))?.[1] ?? NaN);
      const made = (await ordersOfItsUsers()) - before;
      if (workload === 'uniform' && made !== processed) violations.push(`${label}: pgbench processed ${processed} transactions, its users have ${made} new orders`);
      if (workload === 'hot-product' && (p.orders !== HOT_STOCK || p.stockLeft !== 0 || made !== HOT_STOCK)) {
        violations.push(`${label}: ${p.orders} sold, ${made} orders, stock left ${p.stockLeft}; expected exactly ${HOT_STOCK} sold and stock 0`);
      }
    };

    // A keyed twin runs right after its twin, so that the two meet the same server: the ratio
    // between them is the point of the pair.
    if (workloads.includes('uniform')) {
      await settle();
      await record('uniform', 'service', 'uniform · service (HTTP)', await service('uniform', timed));
    }
    if (workloads.includes('uniform-keyed')) {
      await settle();
      await record('uniform-keyed', 'service', 'uniform-keyed · service (HTTP)', await service('uniform-keyed', timed));
    }
    if (workloads.includes('uniform')) {
      await settle();
      await record('uniform', 'ceiling', 'uniform · same SQL through one Node process (no HTTP)', await ceiling('uniform', 'service-sql', timed, fixture.productIds));
      await pgbenchCeiling('uniform', timed);
    }
    // Each hot-product run sells out a product of its own, seeded with HOT_STOCK; the keyed twin too.
    const hot: Array<['hot-product' | 'hot-product-keyed', RunRecord['runner'], string, number, () => Promise<Metered>]> = [];
    if (workloads.includes('hot-product')) {
      hot.push(['hot-product', 'service', 'hot-product · service (HTTP)', fixture.hotProductId, () => service('hot-product', hotAttempts)]);
    }
    if (workloads.includes('hot-product-keyed')) {
      hot.push(['hot-product-keyed', 'service', 'hot-product-keyed · service (HTTP)', fixture.hotKeyedProductId, () => service('hot-product-keyed', hotAttempts)]);
    }
    if (workloads.includes('hot-product')) {
      hot.push(
        ['hot-product', 'ceiling', 'hot-product · same SQL through one Node process (no HTTP)', seeded.ceilingHotProducts.serviceSql, () =>
          ceiling('hot-product', 'service-sql', hotAttempts, [seeded.ceilingHotProducts.serviceSql])],
        ['hot-product', 'plain-row-lock', 'hot-product · plain row lock through one Node process (no HTTP)', seeded.ceilingHotProducts.plainRowLock, () =>
          ceiling('hot-product', 'plain-row-lock', hotAttempts, [seeded.ceilingHotProducts.plainRowLock])],
      );
    }
    for (const [workload, runner, label, productId, go] of hot) {
      await settle();
      const run = await record(workload, runner, label, await go());
      const sold = run.summary.outcomes['201'] ?? 0;
      const soldOut = run.summary.outcomes['400 OUT_OF_STOCK'] ?? 0;
      const [row] = (await target.pool.query<{ stock: number }>('SELECT stock FROM products WHERE id = $1', [productId])).rows;
      if (sold !== HOT_STOCK || soldOut !== run.summary.requests - HOT_STOCK || Number(row!.stock) !== 0) {
        violations.push(`${label}: ${sold} sold, ${soldOut} OUT_OF_STOCK, stock left ${row!.stock}; expected exactly ${HOT_STOCK} sold and stock 0`);
      }
      // Sales per second while there was stock: the figure a flash sale cares about.
      const lastSale = Math.max(...run.samples.filter((s) => s[2] === 201).map((s) => s[0] + s[1]));
      run.salesPerSecond = Math.round((sold / (lastSale / 1000)) * 100) / 100;
      // The database's own limit, after the Node runners' hot runs.
      if (runner === 'plain-row-lock') await pgbenchCeiling('hot-product', hotAttempts);
    }

    if (workloads.includes('coupon-burst')) {
      await settle();
      const burst: Shape = { kind: 'count', attempts: fixture.userIds.length };
      const locks = observeLockWaits(target.pool);
      const m = await service('coupon-burst', burst);
      const { result } = m;
      const lockWaits = await locks.stop();
      const run = await record('coupon-burst', 'service', 'coupon-burst · service (HTTP)', m, { lockWaits });
      const exhausted = latenciesOf(result.samples, (s) => s[3] === 'COUPON_EXHAUSTED');
      run.exhaustedP99Ms = exhausted.length ? Math.round(exhausted[Math.ceil(0.99 * exhausted.length) - 1]! * 100) / 100 : 0;
      const issued = run.summary.outcomes['201'] ?? 0;
      const [c] = (await target.pool.query<{ issued: number; holders: number }>(
        'SELECT issued_quantity AS issued, (SELECT count(DISTINCT user_id)::int FROM user_coupons WHERE coupon_id = $1) AS holders FROM coupons WHERE id = $1',
        [fixture.couponId],
      )).rows;
      if (issued !== BURST_COUPONS || c!.issued !== BURST_COUPONS || c!.holders !== BURST_COUPONS ||
          (run.summary.outcomes['409 COUPON_EXHAUSTED'] ?? 0) !== run.summary.requests - BURST_COUPONS) {
        violations.push(`coupon-burst: ${issued} answered 201, ${c!.issued} counted, ${c!.holders} holders; expected exactly ${BURST_COUPONS}, the rest COUPON_EXHAUSTED`);
      }
    }

    if (workloads.includes('mixed')) {
      await settle();
      await record('mixed', 'service', 'mixed · service (HTTP)', await service('mixed', timed));
    }

    if (workloads.includes('refund')) {
      await settle();
      const cancelledBefore = await countCancelled(target.pool);
      const m = await service('refund', refundShape);
      const label = 'refund · service (HTTP)';
      const run = await record('refund', 'service', label, m);
      const load = m.result.refund;
      if (!load) violations.push(`${label}: the load process reported no orders or cancellations`);
      else {
        // Its own checks need every event delivered, order.cancelled included.
        await waitForDelivery(target.pool);
        const { database, events, violations: broken } = await checkRefund(target.pool, target.receiver, load, cancelledBefore);
        violations.push(...broken);
        const { operations: _, ...window } = refundWindow(m.result.samples, m.result.windowMs);
        run.refund = {
          window,
          run: { placed: load.placed.length, cancelsSent: load.cancelsSent, cancelsAfterLoop: load.cancelsAfterLoop, cancelOutcomes: load.outcomes, badBodies: load.badBodies },
          database,
          events,
        };
        process.stderr.write(
          `  refund: ${window.ordersPerSecond} orders/s, ${window.cancelsPerSecond} cancellations/s; ${load.placed.length} placed, ${load.cancelsSent} cancellations sent, ` +
            `${load.cancelled.length} answered 200, ${database.cancelledAfter - database.cancelledBefore} CANCELLED in the database; ${broken.length} violations\n`,
        );
      }
    }

    if (workloads.includes('slow-platform')) {
      if (!target.receiver) throw new Error('slow-platform needs the benchmark to start the service (no --url)');
      await settle();
      // Every delivery now takes a second to be answered (within DATA_PLATFORM_TIMEOUT_MS): the
      // relay falls behind, the orders must not.
      target.receiver.delayMs = 1_000;
      await record('slow-platform', 'service', 'slow-platform · service (HTTP)', await service('slow-platform', timed));
      target.receiver.delayMs = 0;
    }

    process.stderr.write('checking invariants…\n');
    await settle();
    // At scale, the seeded history's delivered events never went to this run's receiver, and its
    // orders older than the outbox retention have no event left (scale-seed.ts).
    const seededBefore = scaled ? new Date(scaled.scale.seededBefore) : null;
    violations.push(...(await checkEvents(target.pool, target.receiver, seededBefore)).violations);
    violations.push(...(await auditInvariants(target.pool, seeded.initialStock, scaled ? scaleAuditOptions(scaled.scale) : {})));

    const report: Report = {
      startedAt: startedAt.toISOString(),
      target: target.description,
      pgbench: { version: pgbenchBin ? pgbenchVersion(pgbenchBin) : null, threads: PGBENCH_THREADS },
      statements: target.statements,
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      options: {
        connections, poolSize, orderWrites, durationS: Number(opt.duration), warmupS: Number(opt.warmup), users: fixture.userIds.length, products: fixture.productIds.length, hotAttempts: hotAttempts.attempts,
        ...(workloads.includes('refund') ? { refundOrders } : {}),
        ...(workloads.some(isKeyed) ? { replayShare } : {}),
      },
      events: await checkEvents(target.pool, target.receiver, seededBefore),
      runs,
      keyedVsUnkeyed: keyedVsUnkeyed(runs),
      violations,
    };
    const markdown = markdownReport(report) + (scaled ? scaleMarkdown(scaled.scale) : '');
    process.stdout.write(`${markdown}\n`);
    const root = opt.out ? path.resolve(process.env.INIT_CWD ?? process.cwd(), opt.out) : fileURLToPath(new URL('../../../bench/results/', import.meta.url));
    dir = resultsDir(root, startedAt);
    writeFileSync(path.join(dir, 'bench.json'), JSON.stringify({ ...report, ...(scaled ? { scale: scaled.scale } : {}), runs: runs.map(({ samples: _, ...r }) => r) }, null, 2));
    writeFileSync(path.join(dir, 'bench.md'), markdown);
    const panels = chartPanels(runs);
    writeFileSync(
      path.join(dir, 'throughput.svg'),
      throughputChart(
        panels
          .map((p) => ({ title: p.title, series: p.runs.filter((r) => r.summary.perSecond.length > 1).map((r) => ({ ...p.style(r), points: r.summary.perSecond.map((v, i) => [i + 1, v] as const) })) }))
          .filter((p) => p.series.length > 0),
      ),
    );
    writeFileSync(
      path.join(dir, 'latency.svg'),
      latencyChart(panels.map((p) => ({ title: p.title, series: p.runs.map((r) => ({ ...p.style(r), points: cdfPoints(r.samples.map((s) => s[1]).sort((a, b) => a - b)) })) }))),
    );
    process.stderr.write(`results: ${dir}\n`);
    return violations.length === 0 ? 0 : 1;
  } finally {
    await target.close();
    if (cpuProfileDir && dir) {
      const table = ['', '## Service CPU profile (self time, share of busy samples)', '', '| share | function · file:line |', '|---:|---|', ...summariseCpuProfiles(cpuProfileDir)].join('\n');
      process.stdout.write(`${table}\n`);
      appendFileSync(path.join(dir, 'bench.md'), `${table}\n`);
    }
  }
}

const PGBENCH_THREADS = 2;

/**
 * One chart panel per workload: its service run beside the ceilings it is measured against (a keyed
 * workload: beside its unkeyed twin's service run too). One colour per kind of run, the same in
 * every panel, so no two lines of a panel share one.
 */
function chartPanels(runs: readonly RunRecord[]): Array<{ title: string; runs: RunRecord[]; style: (r: RunRecord) => Omit<Series, 'points'> }> {
  const colour: Record<string, string> = {
    service: COLORS[0]!,
    pgbench: COLORS[1]!,
    ceiling: COLORS[2]!,
    'plain-row-lock': COLORS[3]!,
    keyed: COLORS[4]!,
  };
  const names: Record<RunRecord['runner'], string> = {
    service: 'service (HTTP)',
    pgbench: 'pgbench, textbook transaction',
    ceiling: 'same SQL, one Node process',
    'plain-row-lock': 'plain row lock, one Node process',
  };
  const workloads = [...new Set(runs.filter((r) => r.runner === 'service').map((r) => r.workload))];
  return workloads.map((w) => {
    const twin: WorkloadName = isKeyed(w) ? KEYED_TWIN[w] : w === 'slow-platform' ? 'uniform' : w;
    const own = runs.filter((r) => r.workload === w);
    const ceilings = runs.filter((r) => r.workload === twin && r.runner !== 'service');
    const twinService = twin !== w ? runs.filter((r) => r.workload === twin && r.runner === 'service') : [];
    return {
      title: w,
      runs: [...own, ...twinService, ...(w === twin ? [] : ceilings)],
      style: (r: RunRecord) =>
        r.runner === 'service'
          ? r.workload === w && twin !== w
            ? { name: `${w} · service (HTTP)`, color: colour.keyed!, dashed: isKeyed(w) }
            : { name: twin === w ? 'service (HTTP)' : `${r.workload} · service (HTTP)`, color: colour.service! }
          : { name: `${twin === w ? '' : `${twin} · `}${names[r.runner]}`, color: colour[r.runner]! },
    };
  });
}

/** One directory per day; a later run the same day replaces that day's figures. */
function resultsDir(root: string, at: Date): string {
  const dir = path.resolve(root, at.toISOString().slice(0, 10));
  mkdirSync(dir, { recursive: true });
  return dir;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
