import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { auditInvariants } from '@shop/adapters-postgres';
import { charts } from './run/charts.ts';
import { runInChild } from './run/children.ts';
import { createMeter, processTicks, type MeasuredWindow } from './run/meter.ts';
import { checkEvents, quiesce } from './run/observe.ts';
import { findPgbench, PGBENCH_THREADS, pgbenchVersion, runPgbench } from './run/pgbench.ts';
import { summariseCpuProfiles } from './run/profile.ts';
import type { LoadResult, WorkloadName } from './run/protocol.ts';
import { refundWindow } from './run/refund.ts';
import { keyedVsUnkeyed, markdownReport, statementTable, TWIN, type Report, type RunRecord } from './run/report.ts';
import { scaleMarkdown } from './run/scale-plans.ts';
import { seedAtScale } from './run/scale-seed.ts';
import { seedPgbenchRows, seedThroughApi, HOT_STOCK, type PgbenchRows } from './run/seed.ts';
import { summarise } from './run/stats.ts';
import { startTarget } from './run/target.ts';
import { checkSoldOut, WORKLOADS, type Options, type Workload } from './workloads.ts';

export interface BenchOptions extends Options {
  readonly workloads: readonly WorkloadName[];
  readonly poolSize: number;
  readonly orderWrites: number;
  readonly users: number;
  readonly products: number;
  readonly url?: string;
  /** Where the dated results directory goes. */
  readonly out: string;
  readonly cpuProf: boolean;
  readonly scaleFactor: number | null;
  /** Shown in the report's header line. */
  readonly shown: Record<string, number>;
}

const SEED = 42;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Runs the selected workloads of WORKLOADS in order, checks every invariant, writes the report: exit code. */
export async function runBenchmark(o: BenchOptions): Promise<number> {
  const startedAt = new Date();
  log('starting the service…');
  const cpuProfileDir = o.cpuProf ? mkdtempSync(path.join(os.tmpdir(), 'order-service-prof-')) : null;
  const target = await startTarget({ url: o.url, poolSize: o.poolSize, orderWrites: o.orderWrites, cpuProfileDir });
  // Interrupted: still stop the service and the embedded PostgreSQL it started.
  process.once('SIGINT', () => {
    log('\ninterrupted; stopping the service…');
    void target.close().finally(() => process.exit(130));
  });
  const violations: string[] = [];
  const runs: RunRecord[] = [];
  const selected = WORKLOADS.filter((w) => o.workloads.includes(w.name));
  let dir: string | null = null;
  try {
    const scaled = o.scaleFactor === null ? null : await seedAtScale(target, o.scaleFactor, { users: o.users, products: o.products });
    const seeded = scaled ?? (await seedThroughApi(target, { users: o.users, products: o.products, couponHolders: Math.floor(o.users / 5) }));
    const { fixture, initialStock } = seeded;
    // pgbench's own users and products, after everything else so each set's ids are consecutive.
    const pgbenchBin = findPgbench();
    if (!pgbenchBin) log('pgbench is not on PATH: the ceilings fall back to the Node runners');
    const withPgbench = pgbenchBin && selected.some((w) => w.ceilings);
    const pgRows = withPgbench ? await seedPgbenchRows(target, { users: fixture.userIds.length, products: fixture.productIds.length }, initialStock) : null;
    const meter = await createMeter(target.pool, target.servicePid, target.statements);
    if (meter.postmasterPid === null) log('PostgreSQL runs elsewhere: its CPU is not measured');
    if (!target.statements) log('pg_stat_statements is not loaded on this server: no statement figures');

    /** The window's CPU and statements, attached to the run, and the run's generic checks. */
    const record = async (run: RunRecord, window: MeasuredWindow | null, orders: number, unit?: 'operation') => {
      runs.push(run);
      const { cpu, statements } = window ? await window.result() : { cpu: null, statements: undefined };
      if (cpu) run.cost = { cpu, orders, requests: run.summary.requests, ...(unit ? { unit } : {}) };
      if (statements !== undefined) run.statements = statements;
      for (const l of statementTable(run)) log(`  ${l}`);
      const dropped = Object.entries(run.summary.outcomes).filter(([k]) => k.startsWith('5') || k.startsWith('0'));
      if (dropped.length > 0) violations.push(`${run.label}: server errors or dropped requests ${JSON.stringify(Object.fromEntries(dropped))}`);
    };
    /** A child's run with its measured window metered: CPU at its edges, pg_stat_statements between. */
    const metered = async (plan: Parameters<typeof runInChild>[0], label: string) => {
      let window: MeasuredWindow | null = null;
      const result = await runInChild(plan, label, (edge, pid) => {
        if (edge === 'start') (window = meter.window(() => processTicks(pid))).begin();
        else window?.finish();
      });
      return { result, window: window as MeasuredWindow | null };
    };
    const shared = { connections: o.connections, seed: SEED };

    const service = async (w: Workload) => {
      await quiesce(target.pool);
      const label = `${w.name} · service (HTTP)`;
      const state = await w.before?.(target);
      const plan = { kind: 'load', requests: w.requests, keyed: w.keyed ?? false, replayShare: o.replayShare, productId: w.hotProduct?.(fixture) ?? 0 } as const;
      const { result, window } = await metered({ ...plan, ...shared, baseUrl: target.baseUrl, authSecret: target.authSecret, shape: w.shape(o, fixture), fixture }, label);
      const extra = (await w.after?.(state, target)) ?? {};
      const run: RunRecord = { workload: w.name, runner: 'service', label, summary: summarise(result), samples: result.samples, ...extra };
      // refund: CPU per operation, an order or a cancellation that succeeded.
      const refund = w.perOperation ? refundWindow(result.samples, result.windowMs) : null;
      await record(run, window, refund ? refund.orders + refund.cancels : run.summary.orders, refund ? 'operation' : undefined);
      if (w.keyed) violations.push(...replayViolations(run, result, o.replayShare));
      violations.push(...((await w.check?.({ run, result, target, fixture, state })) ?? []));
    };

    const ceilings = async (w: Workload) => {
      for (const c of w.ceilings ?? []) {
        await quiesce(target.pool);
        const products = c.products(fixture);
        const label = `${w.name} · ${c.variant === 'service-sql' ? 'same SQL' : 'plain row lock'} through one Node process (no HTTP)`;
        const plan = { kind: 'ceiling', variant: c.variant, productIds: products, userIds: fixture.userIds, databaseUrl: target.databaseUrl, poolSize: o.poolSize, orderWrites: o.orderWrites } as const;
        const { result, window } = await metered({ ...plan, ...shared, shape: w.shape(o, fixture) }, label);
        const run: RunRecord = { workload: w.name, runner: c.variant === 'service-sql' ? 'ceiling' : 'plain-row-lock', label, summary: summarise(result), samples: result.samples };
        await record(run, window, run.summary.orders);
        if (w.hotProduct) violations.push(...(await checkSoldOut({ run, target }, products[0]!)));
      }
      if (pgbenchBin && pgRows) await pgbenchRun(w.name as 'uniform' | 'hot-product', w.shape(o, fixture), pgRows);
    };

    /** The database's own limit: pgbench, the textbook transaction, on its own rows. */
    const pgbenchRun = async (workload: 'uniform' | 'hot-product', shape: ReturnType<Workload['shape']>, rows: PgbenchRows) => {
      await quiesce(target.pool);
      const label = `${workload} · pgbench, textbook transaction${workload === 'hot-product' ? ', hot row locked first' : ''}`;
      const ordersOfItsUsers = async () =>
        (await target.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE user_id BETWEEN $1 AND $2', [rows.users.first, rows.users.last])).rows[0]!.n;
      const before = await ordersOfItsUsers();
      const p = await runPgbench({ bin: pgbenchBin!, workload, databaseUrl: target.databaseUrl, clients: o.connections, shape, rows, pool: target.pool, meter, label });
      const outcomes: Record<string, number> =
        workload === 'uniform' ? { committed: p.transactions } : { 'sold (committed)': p.orders, 'out of stock (rolled back)': p.transactions - p.orders };
      const base = summarise({ samples: p.samples, windowMs: p.windowMs, transportErrors: 0 });
      const summary = { ...base, orders: p.orders, ordersPerSecond: Math.round((p.orders / (p.windowMs / 1000)) * 100) / 100, outcomes };
      const pgbench = { tps: p.tps, transactions: p.transactions, command: p.command, summary: p.summary };
      const run: RunRecord = { workload, runner: 'pgbench', label, summary, samples: p.samples, pgbench, ...('salesPerSecond' in p ? { salesPerSecond: p.salesPerSecond } : {}) };
      await record(run, p.window, p.orders);
      violations.push(...p.problems.map((problem) => `${label}: ${problem}`));
      // Every transaction pgbench processed left exactly one order of its users.
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(p.summary.join('\n'))?.[1] ?? NaN);
      const made = (await ordersOfItsUsers()) - before;
      if (workload === 'uniform' && made !== processed) violations.push(`${label}: pgbench processed ${processed} transactions, its users have ${made} new orders`);
      if ('stockLeft' in p && (p.orders !== HOT_STOCK || p.stockLeft !== 0 || made !== HOT_STOCK)) {
        violations.push(`${label}: ${p.orders} sold, ${made} orders, stock left ${p.stockLeft}; expected exactly ${HOT_STOCK} sold and stock 0`);
      }
    };

    for (const w of selected) {
      await service(w);
      // A workload's ceilings run after it and its keyed twin, whichever of the two comes last.
      const base = w.keyed ? selected.find((b) => b.name === TWIN[w.name]) : w;
      const twinLater = selected.slice(selected.indexOf(w) + 1).some((x) => x.keyed && TWIN[x.name] === w.name);
      if (base?.ceilings && (w.keyed || !twinLater)) await ceilings(base);
    }

    log('checking invariants…');
    await quiesce(target.pool);
    // At scale, the seeded history's delivered events never went to this run's receiver, and its
    // orders older than the outbox retention have no event left (scale-seed.ts).
    const seededBefore = scaled ? new Date(scaled.scale.seededBefore) : null;
    violations.push(...(await checkEvents(target.pool, target.receiver, seededBefore)).violations);
    const audit = scaled ? { eventsPurgedBefore: new Date(scaled.scale.history.eventsRetainedSince) } : {};
    violations.push(...(await auditInvariants(target.pool, initialStock, audit)));

    const cpus = os.cpus();
    const report: Report = {
      startedAt: startedAt.toISOString(),
      target: target.description,
      pgbench: { version: pgbenchBin ? pgbenchVersion(pgbenchBin) : null, threads: PGBENCH_THREADS },
      statements: target.statements,
      machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      options: { ...o.shown, users: fixture.userIds.length, products: fixture.productIds.length, hotAttempts: o.hotAttempts, ...optional(o) },
      events: await checkEvents(target.pool, target.receiver, seededBefore),
      runs,
      keyedVsUnkeyed: keyedVsUnkeyed(runs),
      violations,
    };
    const extraTargets = selected.flatMap((w) => {
      const run = runs.find((r) => r.workload === w.name && r.runner === 'service');
      return w.target && run ? [w.target(run, runs)].filter(Boolean) : [];
    });
    const markdown = markdownReport(report, extraTargets) + (scaled ? scaleMarkdown(scaled.scale) : '');
    process.stdout.write(`${markdown}\n`);
    // One directory per day; a later run the same day replaces that day's figures.
    dir = path.resolve(o.out, startedAt.toISOString().slice(0, 10));
    mkdirSync(dir, { recursive: true });
    const json = { ...report, ...(scaled ? { scale: scaled.scale } : {}), runs: runs.map(({ samples: _, ...r }) => r) };
    writeFileSync(path.join(dir, 'bench.json'), JSON.stringify(json, null, 2));
    writeFileSync(path.join(dir, 'bench.md'), markdown);
    const { throughput, latency } = charts(runs);
    writeFileSync(path.join(dir, 'throughput.svg'), throughput);
    writeFileSync(path.join(dir, 'latency.svg'), latency);
    log(`results: ${dir}`);
    return violations.length === 0 ? 0 : 1;
  } finally {
    await target.close(); // the service writes its CPU profile as it exits
    if (cpuProfileDir && dir) {
      const table = ['', '## Service CPU profile (self time, share of busy samples)', '', '| share | function · file:line |', '|---:|---|', ...summariseCpuProfiles(cpuProfileDir)];
      process.stdout.write(`${table.join('\n')}\n`);
      appendFileSync(path.join(dir, 'bench.md'), `${table.join('\n')}\n`);
    }
  }
}

/** The header's refundOrders and replayShare, when a workload that uses them ran. */
function optional(o: BenchOptions): Record<string, number> {
  return {
    ...(o.workloads.includes('refund') ? { refundOrders: o.refundOrders } : {}),
    ...(o.workloads.some((w) => w.endsWith('-keyed')) ? { replayShare: o.replayShare } : {}),
  };
}

/** A keyed run's replays: each must have answered the first 201, and no first answer was a replay. */
function replayViolations(run: RunRecord, result: LoadResult, replayShare: number): string[] {
  const r = result.replays;
  if (!r) return [`${run.label}: the load process reported no replays`];
  run.replays = r;
  const out: string[] = [];
  if (r.mismatched > 0) {
    out.push(
      `${run.label}: ${r.mismatched} of ${r.sent} replays did not return the first 201 (same body, idempotent-replayed: true): ` +
        `${JSON.stringify(r.mismatchKinds)}; e.g. ${r.examples.slice(0, 2).join(' | ')}`,
    );
  }
  if (r.firstAnswersMarkedReplayed > 0) out.push(`${run.label}: ${r.firstAnswersMarkedReplayed} orders with a fresh Idempotency-Key were answered as replays`);
  if (replayShare > 0 && r.sent === 0 && (run.summary.outcomes['201'] ?? 0) > 0) out.push(`${run.label}: orders succeeded but none was replayed`);
  return out;
}
