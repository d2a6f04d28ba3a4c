import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { auditInvariants } from '@shop/adapters-postgres';
import { quiesce } from '@shop/adapters-postgres/bench';
import { runInChild, type CeilingPlan, type LoadPlan, type LoadResult } from './run/child.ts';
import { checkEvents, compareCpuProfiles, createMeter, processTicks, readCpuProfiles, summariseCpuProfiles, type MeasuredWindow } from './run/measure.ts';
import { PGBENCH_THREADS, pgbenchVersion, runPgbench } from './run/pgbench.ts';
import { find, interleavedSides, keyedVsUnkeyed, markdownReport, RUNNER_NAMES, TWIN, type RunRecord, type Runner, type WorkloadName } from './run/report.ts';
import { scaleMarkdown, seedAtScale, startReference } from './run/scale.ts';
import { summarise } from './run/stats.ts';
import { seedFixture, seedPgbenchRows, startTarget } from './run/target.ts';
import { checkSoldOut, WORKLOADS, type Options, type Workload } from './workloads.ts';

export type BenchOptions = Options & {
  readonly workloads: readonly WorkloadName[]; readonly replayShare: number; readonly poolSize: number; readonly orderWrites: number;
  readonly users: number; readonly products: number; readonly url?: string; readonly cpuProf: boolean; readonly scaleFactor: number | null;
  readonly serviceOnly: boolean; // no reference runs (pgbench, the Node runners): for quick alternated comparisons
  readonly statements: number; // pg_stat_statements: the costliest this many statements kept per window
  readonly keyedPhaseMs: number; // after uniform's ABBA, an interleaved window of keyed and unkeyed phases this long (0: none)
  readonly out: string; readonly unpartitionedReference?: boolean; // out: where the dated results directory goes
};

const SEED = 42;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Runs the selected workloads of WORKLOADS in order, checks every invariant, writes the report: the exit code. */
export async function runBenchmark(o: BenchOptions): Promise<number> {
  const startedAt = new Date();
  log('starting the service…');
  const cpuProfileDir = o.cpuProf ? mkdtempSync(path.join(os.tmpdir(), 'order-service-prof-')) : null;
  const target = await startTarget({ ...o, cpuProfileDir, replica: o.workloads.includes('mixed-replica') });
  // Interrupted: still stop the service and the embedded PostgreSQL it started.
  process.once('SIGINT', () => void target.close().finally(() => process.exit(130)));
  const [violations, runs, selected] = [[] as string[], [] as RunRecord[], WORKLOADS.filter((w) => o.workloads.includes(w.name))];
  let [dir, reference] = [null as string | null, null as Awaited<ReturnType<typeof startReference>> | null];
  try {
    const size = { users: o.users, products: o.products };
    const scaled = o.scaleFactor === null ? null : await seedAtScale(target, o.scaleFactor, size, o.unpartitionedReference ? {} : undefined);
    reference = scaled && o.unpartitionedReference ? await startReference(target, o, scaled.scale, size) : null; // the same rows, not partitioned
    const { fixture, initialStock } = scaled ?? (await seedFixture(target.pool, { ...size, couponHolders: Math.floor(o.users / 5) }));
    // pgbench's own users and products, after everything else so each set's ids are consecutive.
    const pgbench = pgbenchVersion();
    if (!pgbench) log('pgbench is not on PATH: the ceilings fall back to the Node runners');
    const pgRows = pgbench && !o.serviceOnly && selected.some((w) => w.ceilings)
      ? await seedPgbenchRows(target.pool, { users: fixture.userIds.length, products: fixture.productIds.length }, initialStock) : null;
    const meter = await createMeter(target.pool, () => target.servicePid, target.statements, o.statements);
    if (meter.postmasterPid === null) log('PostgreSQL runs elsewhere: its CPU is not measured');
    if (!target.statements) log('pg_stat_statements is not loaded on this server: no statement figures');

    /** The window's CPU and statements, attached to the run, and the generic check: no 5xx, nothing dropped. */
    const record = async (run: RunRecord, window: MeasuredWindow | null, orders: number, unit?: 'operation', replays = 0) => {
      log(`  ${run.label}: ${run.summary.requests} requests, ${run.summary.ordersPerSecond} orders/s, p99 ${run.summary.latencyMs.p99} ms`);
      runs.push(run);
      const { cpu, statements } = window ? await window.result() : { cpu: null, statements: undefined };
      if (cpu) run.cost = { cpu, orders, requests: run.summary.requests + replays, ...(unit ? { unit } : {}) };
      if (statements !== undefined) run.statements = statements;
      const dropped = Object.entries(run.summary.outcomes).filter(([k]) => k.startsWith('5') || k.startsWith('0'));
      if (dropped.length > 0) violations.push(`${run.label}: server errors or dropped requests ${JSON.stringify(Object.fromEntries(dropped))}`);
    };
    /** A child's run, its measured window metered: CPU at its edges, pg_stat_statements between; `on`: the target's, or the reference's; `onEdge` hears each edge too. */
    const main = { target, fixture, meter, runner: 'service' as Runner, label: 'service (HTTP)' };
    const metered = async (plan: LoadPlan | CeilingPlan, on = main, onEdge?: () => void) => {
      await quiesce(on.target.pool);
      let window: MeasuredWindow | null = null;
      const result = await runInChild(plan, (pid, edge) => ((window ??= on.meter.window(() => processTicks(pid))).mark(edge),
        edge === 'phase' || onEdge?.()));
      return { result, window: window as MeasuredWindow | null, summary: summarise(result), samples: result.samples };
    };
    const shared = { connections: o.connections, seed: SEED };
    const service = async (w: Workload, on = main, second = false, { target, fixture } = on, phaseMs = 0) => {
      const state = await w.before?.(target, fixture, o);
      const shape = w.shape(o, fixture);
      const { result, window, ...measured } = await metered({
        ...shared, kind: 'load', requests: w.requests, keyed: w.keyed ?? false, replayShare: o.replayShare, productId: w.hotProduct?.(fixture) ?? 0,
        baseUrl: target.baseUrl, authSecret: target.authSecret, fixture, refundOrders: o.refundOrders, phaseMs,
        // Interleaved: twice as long, so that each side has a plain window's length.
        shape: phaseMs > 0 && shape.kind === 'timed' ? { ...shape, durationMs: shape.durationMs * 2 } : shape,
      }, on, () => w.edge?.(state));
      const label = phaseMs > 0 ? `${w.name} · ${RUNNER_NAMES.interleaved}, every ${phaseMs / 1000} s` : `${w.name} · ${on.label}${second ? ', second window' : ''}`;
      const run: RunRecord = { workload: w.name, runner: phaseMs > 0 ? 'interleaved' : on.runner, label,
        ...measured, ...(await w.after?.(state, target)), ...(second ? { secondWindow: true } : {}) };
      if (phaseMs > 0) violations.push(...(await interleave(run, window, result, phaseMs)));
      const ops = w.operations?.(result);
      await record(run, window, ops ?? run.summary.orders, ops === undefined ? undefined : 'operation', result.replays?.inWindow ?? 0);
      if (w.keyed) violations.push(...replayViolations(run, result, o.replayShare));
      violations.push(...((await w.check?.({ run, result, target, fixture, state })) ?? []));
    };
    /** An interleaved window's phases, each side's CPU summed over its phases (the child's phases and the meter's, edge by edge). */
    const interleave = async (run: RunRecord, window: MeasuredWindow | null, result: LoadResult, phaseMs: number) => {
      const [phases, cpu] = [result.interleaved ?? [], (await window?.result())?.phases ?? []];
      if (phases.length < 2 || cpu.length !== phases.length) return [`${run.label}: ${phases.length} phases counted, ${cpu.length} metered`];
      run.interleaved = interleavedSides(phaseMs, phases.map((p, i) => ({ ...p, cpu: cpu[i]! })));
      return [];
    };
    const ceilings = async (w: Workload) => {
      for (const { variant, products } of w.ceilings ?? []) {
        const { result: _, window, ...measured } = await metered({
          ...shared, kind: 'ceiling', variant, productIds: products(fixture), userIds: fixture.userIds, databaseUrl: target.databaseUrl,
          poolSize: o.poolSize, orderWrites: o.orderWrites, shape: w.shape(o, fixture),
        });
        const label = `${w.name} · ${variant === 'ceiling' ? 'same SQL' : 'plain row lock'} through one Node process (no HTTP)`;
        const run: RunRecord = { workload: w.name, runner: variant, label, ...measured };
        await record(run, window, run.summary.orders);
        if (w.hotProduct) violations.push(...(await checkSoldOut({ run, target }, products(fixture)[0]!)));
      }
      if (!pgRows) return;
      // The database's own limit: pgbench, the textbook transaction, on its own rows.
      const workload = w.name as 'uniform' | 'hot-product';
      const label = `${workload} · pgbench, textbook transaction${workload === 'hot-product' ? ', hot row locked first' : ''}`;
      await quiesce(target.pool);
      const { summary, samples, pgbench: figures, salesPerSecond, window, orders, problems } =
        await runPgbench(workload, { ...target, clients: o.connections, shape: w.shape(o, fixture), rows: pgRows, meter });
      await record({ workload, runner: 'pgbench', label, summary, samples, pgbench: figures, salesPerSecond }, window, orders);
      violations.push(...problems.map((problem) => `${label}: ${problem}`));
    };

    // uniform and its keyed twin, ABBA: uniform, keyed, keyed, uniform (about 50 s more). The machine's speed drifts between windows, and
    // keyed always ran second: across the committed full runs the load generator's keyed ÷ unkeyed CPU per request (the same loop, plus a
    // key per order and the replays) ran 0.97-1.41× and rose and fell with the service's. Each side's figure is now the mean of an early
    // and a late window.
    const abba = !reference && selected.some((w) => w.name === 'uniform') && selected.some((w) => w.name === 'uniform-keyed');
    for (const w of selected) {
      // With the reference, each side twice, ABBA: the second window of a pair runs slower whichever database it is on (measured 0.79× and 1.06×
      // for the same code, the order swapped), so each side's figure is the mean of one early and one late window.
      for (const on of reference && ['uniform', 'uniform-keyed'].includes(w.name) ? [main, reference, reference, main] : [main]) await service(w, on);
      if (abba && w.name === 'uniform-keyed') {
        await service(w, main, true);
        await service(selected.find((b) => b.name === 'uniform')!, main, true);
        // Then keyed and unkeyed orders in alternate phases of one window: each side's CPU per order measured at the same moments, so that
        // the machine's drift between windows (the load process's fixed work per request moved ±15 % from one window to the next) falls on both.
        if (o.keyedPhaseMs > 0) await service(w, main, false, main, o.keyedPhaseMs);
      }
      // A workload's ceilings run after it and its keyed twin, whichever of the two comes last.
      const base = w.keyed ? selected.find((b) => b.name === TWIN[w.name]) : w;
      const twinLater = selected.slice(selected.indexOf(w) + 1).some((x) => x.keyed && TWIN[x.name] === w.name);
      if (base?.ceilings && !o.serviceOnly && (w.keyed || !twinLater)) await ceilings(base);
    }

    log('checking invariants…');
    await quiesce(target.pool);
    // At scale, the seeded history's events never reached this run's receiver, and orders older than the outbox retention have none left.
    const events = await checkEvents(target.pool, target.receiver, scaled ? new Date(scaled.scale.seededBefore) : null);
    const eventsPurgedBefore = scaled ? new Date(scaled.scale.history.eventsRetainedSince) : undefined;
    violations.push(...events.violations, ...(await auditInvariants(target.pool, initialStock, { eventsPurgedBefore })), ...(await reference?.check() ?? []));

    const [cpus, keyed] = [os.cpus(), o.workloads.some((w) => w.endsWith('-keyed'))];
    const report = {
      startedAt: startedAt.toISOString(), target: target.description, pgbench: { version: pgbench, threads: PGBENCH_THREADS }, statements: target.statements,
      machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      options: { connections: o.connections, poolSize: o.poolSize, orderWrites: o.orderWrites, durationS: o.timed.durationMs / 1000,
        warmupS: o.timed.warmupMs / 1000, users: fixture.userIds.length, products: fixture.productIds.length, hotAttempts: o.hotAttempts,
        ...(o.workloads.includes('refund') ? { refundOrders: o.refundOrders } : {}), ...(keyed ? { replayShare: o.replayShare } : {}),
        ...(target.statements ? { statementsPerWindow: o.statements } : {}) },
      events, runs, keyedVsUnkeyed: keyedVsUnkeyed(runs), violations,
    };
    // What each workload says of its own service run, in the Targets.
    const extraTargets = selected.flatMap((w) => (w.target && find(runs, w.name) ? [w.target(find(runs, w.name)!, runs)].filter(Boolean) : []));
    const markdown = markdownReport(report, extraTargets) + (scaled ? scaleMarkdown(scaled.scale) : '');
    process.stdout.write(`${markdown}\n`);
    // One directory per day; a later run the same day replaces that day's figures.
    mkdirSync((dir = path.resolve(o.out, startedAt.toISOString().slice(0, 10))), { recursive: true });
    const json = { ...report, ...(scaled ? { scale: scaled.scale, unpartitionedScale: reference?.scale } : {}), runs: runs.map(({ samples: _, ...r }) => r) };
    writeFileSync(path.join(dir, 'bench.json'), JSON.stringify(json, null, 2));
    writeFileSync(path.join(dir, 'bench.md'), markdown);
    log(`results: ${dir}`);
    return violations.length === 0 ? 0 : 1;
  } finally {
    await reference?.target.close();
    await target.close(); // the service writes its CPU profile as it exits
    if (cpuProfileDir && dir) {
      // The service under uniform (else the first service run), every window of it; beside it uniform-keyed's, per order, when it ran:
      // what a key costs the service, function by function.
      const windowsOf = (w: WorkloadName) => runs.filter((x) => x.workload === w && x.runner === 'service' && x.cost?.cpu);
      const first = runs.find((x) => x.runner === 'service' && x.cost?.cpu);
      const unkeyed = windowsOf('uniform').length > 0 ? windowsOf('uniform') : first ? [first] : [];
      const keyed = windowsOf('uniform-keyed');
      const profiles = readCpuProfiles(cpuProfileDir);
      const of = (list: RunRecord[]) => summariseCpuProfiles(profiles, list.map((r) => ({ fromUs: r.cost!.cpu!.fromUs, toUs: r.cost!.cpu!.toUs, label: `${r.label}, its window` })));
      const [a, b] = [of(unkeyed), keyed.length > 0 ? of(keyed) : null];
      const orders = (list: RunRecord[]) => list.reduce((n, r) => n + (r.cost!.orders || r.cost!.requests), 0);
      const markdown = [...a.markdown, ...(b ? [...b.markdown, ...compareCpuProfiles(
        { label: unkeyed[0]!.workload, summary: a.summary, units: orders(unkeyed) }, { label: 'uniform-keyed', summary: b.summary, units: orders(keyed) })] : [])];
      process.stdout.write(`${markdown.join('\n')}\n`);
      appendFileSync(path.join(dir, 'bench.md'), `${markdown.join('\n')}\n`);
      const top = (l: typeof a.summary.byPackage) => l.slice(0, 30).map(([name, samples]) => ({ name, samples }));
      const json = (list: RunRecord[], s: typeof a.summary) => ({ run: list.map((r) => r.label).join(' + ') || null, orders: orders(list), busy: s.busy, total: s.total,
        byPackage: top(s.byPackage), byFunction: top(s.byFunction) });
      writeFileSync(path.join(dir, 'cpu-profile.json'), JSON.stringify({ ...json(unkeyed, a.summary), ...(b && { keyed: json(keyed, b.summary) }) }, null, 2));
    }
  }
}

/** A keyed run's replays: each must have answered the first 201, and no first answer was a replay. */
function replayViolations(run: RunRecord, { replays: r }: LoadResult, replayShare: number): string[] {
  if (!r) return [`${run.label}: the load process reported no replays`];
  run.replays = r;
  return [
    r.mismatched > 0 && `${r.mismatched} of ${r.sent} replays did not return the first 201 (same body, idempotent-replayed: true): ` +
      `${JSON.stringify(r.mismatchKinds)}; e.g. ${r.examples.slice(0, 2).join(' | ')}`,
    r.firstAnswersMarkedReplayed > 0 && `${r.firstAnswersMarkedReplayed} orders with a fresh Idempotency-Key were answered as replays`,
    replayShare > 0 && r.sent === 0 && (run.summary.outcomes['201'] ?? 0) > 0 && 'orders succeeded but none was replayed',
  ].flatMap((v) => (v ? [`${run.label}: ${v}`] : []));
}
