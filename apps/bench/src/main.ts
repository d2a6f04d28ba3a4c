import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { auditInvariants } from '@shop/adapters-postgres';
import { runInChild, progressBar } from './run/children.ts';
import { observeLockWaits, waitForDelivery, checkEvents } from './run/observe.ts';
import { isKeyed, type LoadResult, type Shape, type WorkloadName } from './run/protocol.ts';
import { keyedVsUnkeyed, markdownReport, type Report, type RunRecord } from './run/report.ts';
import { BURST_COUPONS, HOT_STOCK, seedThroughApi } from './run/seed.ts';
import { latenciesOf, summarise } from './run/stats.ts';
import { cdfPoints, latencyChart, throughputChart } from './run/svg.ts';
import { summariseCpuProfiles } from './run/profile.ts';
import { startTarget } from './run/target.ts';

const HELP = `pnpm bench [options]
  --workloads  uniform,uniform-keyed,hot-product,hot-product-keyed,coupon-burst,mixed,slow-platform
               (default: all)
               uniform-keyed / hot-product-keyed = the same load as their twin, every order with
               its own Idempotency-Key, and about 10% of those answered 201 sent again shortly
               after with the same key and body (must replay the first answer; not counted as
               orders); the report sets each against its unkeyed twin of the same run
               slow-platform = uniform while every event delivery takes 1 s to be answered
  --connections N    HTTP keep-alive connections = the ceiling's concurrent callers (default 64)
  --pool N           the service's DATABASE_POOL_SIZE = the ceiling's pg pool (default 16)
  --order-writes N   the service's ORDER_WRITES_IN_FLIGHT = the ceiling's (default 2)
  --duration S       measured window of the timed workloads, seconds (default 20)
  --warmup S         warm-up before it, seconds (default 5)
  --users N          users to seed (default 10000)   --products N   products to seed (default 1000)
  --hot-attempts N   hot-product attempts (default 20000)
  --url URL          benchmark a running service (needs DATABASE_URL and AUTH_SECRET)
  --out DIR          where results go (default bench/results)
  --cpu-prof         profile the service (V8 --cpu-prof) and list its hottest functions`;

const { values: opt } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'uniform,uniform-keyed,hot-product,hot-product-keyed,coupon-burst,mixed,slow-platform' },
    connections: { type: 'string', default: '64' },
    pool: { type: 'string', default: '16' },
    'order-writes': { type: 'string', default: '2' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    users: { type: 'string', default: '10000' },
    products: { type: 'string', default: '1000' },
    'hot-attempts': { type: 'string', default: '20000' },
    url: { type: 'string' },
    out: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

const workloads = opt.workloads.split(',').map((w) => w.trim()) as WorkloadName[];
const known: WorkloadName[] = ['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed', 'coupon-burst', 'mixed', 'slow-platform'];
for (const w of workloads) if (!known.includes(w)) throw new Error(`unknown workload ${w}; known: ${known.join(', ')}`);
const connections = Number(opt.connections);
const poolSize = Number(opt.pool);
const orderWrites = Number(opt['order-writes']);
const timed: Shape = { kind: 'timed', warmupMs: Number(opt.warmup) * 1000, durationMs: Number(opt.duration) * 1000 };
const hotAttempts = { kind: 'count', attempts: Number(opt['hot-attempts']) } as const satisfies Shape;

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
    const seedBar = progressBar('seeding through the admin API');
    const seeded = await seedThroughApi(
      target.baseUrl,
      target.authSecret,
      { users: Number(opt.users), products: Number(opt.products), couponHolders: Math.floor(Number(opt.users) / 5) },
      (done, total) => seedBar(done, total, done >= total ? 'done' : 'seeding'),
    );
    const { fixture } = seeded;
    const seed = 42;

    const record = async (workload: WorkloadName, runner: RunRecord['runner'], label: string, result: LoadResult, extra: Partial<RunRecord> = {}) => {
      const run: RunRecord = { workload, runner, label, summary: summarise(result), samples: result.samples, ...extra };
      runs.push(run);
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
          if (r.sent === 0 && (run.summary.outcomes['201'] ?? 0) > 0) violations.push(`${label}: orders succeeded but none was replayed`);
        }
      }
      return run;
    };
    // Each run starts with the previous run's events delivered, so the relay's catch-up does not
    // compete with the next measurement.
    const settle = () => waitForDelivery(target.pool);
    const service = (workload: WorkloadName, shape: Shape) =>
      runInChild('load-process.ts', { workload, baseUrl: target.baseUrl, authSecret: target.authSecret, connections, shape, fixture, seed }, `${workload} · service (HTTP)`);
    const ceiling = (workload: 'uniform' | 'hot-product', variant: 'service-sql' | 'plain-row-lock', shape: Shape, productIds: readonly number[]) =>
      runInChild(
        'ceiling-process.ts',
        { workload, variant, databaseUrl: target.databaseUrl, connections, poolSize, orderWrites, shape, userIds: fixture.userIds, productIds, seed },
        `${workload} · ${variant === 'service-sql' ? 'ceiling (same SQL)' : 'plain row lock'}`,
      );

    if (workloads.includes('uniform')) {
      await settle();
      await record('uniform', 'service', 'uniform · service (HTTP)', await service('uniform', timed));
      await settle();
      await record('uniform', 'ceiling', 'uniform · ceiling (same SQL, no HTTP)', await ceiling('uniform', 'service-sql', timed, fixture.productIds));
    }
    if (workloads.includes('uniform-keyed')) {
      await settle();
      await record('uniform-keyed', 'service', 'uniform-keyed · service (HTTP)', await service('uniform-keyed', timed));
    }

    // Each hot-product run sells out a product of its own, seeded with HOT_STOCK; the keyed twin too.
    const hot: Array<['hot-product' | 'hot-product-keyed', RunRecord['runner'], string, number, () => Promise<LoadResult>]> = [];
    if (workloads.includes('hot-product')) {
      hot.push(
        ['hot-product', 'service', 'hot-product · service (HTTP)', fixture.hotProductId, () => service('hot-product', hotAttempts)],
        ['hot-product', 'ceiling', 'hot-product · ceiling (same SQL, no HTTP)', seeded.ceilingHotProducts.serviceSql, () =>
          ceiling('hot-product', 'service-sql', hotAttempts, [seeded.ceilingHotProducts.serviceSql])],
        ['hot-product', 'plain-row-lock', 'hot-product · plain row lock (no HTTP)', seeded.ceilingHotProducts.plainRowLock, () =>
          ceiling('hot-product', 'plain-row-lock', hotAttempts, [seeded.ceilingHotProducts.plainRowLock])],
      );
    }
    if (workloads.includes('hot-product-keyed')) {
      hot.push(['hot-product-keyed', 'service', 'hot-product-keyed · service (HTTP)', fixture.hotKeyedProductId, () => service('hot-product-keyed', hotAttempts)]);
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
    }

    if (workloads.includes('coupon-burst')) {
      await settle();
      const burst: Shape = { kind: 'count', attempts: fixture.userIds.length };
      const locks = observeLockWaits(target.pool);
      const result = await service('coupon-burst', burst);
      const lockWaits = await locks.stop();
      const run = await record('coupon-burst', 'service', 'coupon-burst · service (HTTP)', result, { lockWaits });
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
    violations.push(...(await checkEvents(target.pool, target.receiver)).violations);
    violations.push(...(await auditInvariants(target.pool, seeded.initialStock)));

    const report: Report = {
      startedAt: startedAt.toISOString(),
      target: target.description,
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      options: { connections, poolSize, orderWrites, durationS: Number(opt.duration), warmupS: Number(opt.warmup), users: fixture.userIds.length, products: fixture.productIds.length, hotAttempts: hotAttempts.attempts },
      events: await checkEvents(target.pool, target.receiver),
      runs,
      keyedVsUnkeyed: keyedVsUnkeyed(runs),
      violations,
    };
    const markdown = markdownReport(report);
    process.stdout.write(`${markdown}\n`);
    const root = opt.out ? path.resolve(process.env.INIT_CWD ?? process.cwd(), opt.out) : fileURLToPath(new URL('../../../bench/results/', import.meta.url));
    dir = resultsDir(root, startedAt);
    writeFileSync(path.join(dir, 'bench.json'), JSON.stringify({ ...report, runs: runs.map(({ samples: _, ...r }) => r) }, null, 2));
    writeFileSync(path.join(dir, 'bench.md'), markdown);
    // A keyed run is drawn dashed in its unkeyed twin's colour.
    const line = (r: RunRecord) => {
      const name = r.label.replace(' (same SQL, no HTTP)', '').replace(/ \((no )?HTTP\)$/, '');
      return { name, colorKey: name.replace('-keyed', ''), dashed: isKeyed(r.workload) };
    };
    writeFileSync(
      path.join(dir, 'throughput.svg'),
      throughputChart(runs.filter((r) => r.summary.perSecond.length > 1).map((r) => ({ ...line(r), points: r.summary.perSecond.map((v, i) => [i + 1, v] as const) }))),
    );
    writeFileSync(
      path.join(dir, 'latency.svg'),
      latencyChart(runs.map((r) => ({ ...line(r), points: cdfPoints(r.samples.map((s) => s[1]).sort((a, b) => a - b)) }))),
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
