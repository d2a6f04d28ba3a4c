import type { LockWaits, StatementStats } from '@shop/adapters-postgres/bench';
import type { ClusterDelivery, ReplicaReads } from '@shop/local-clusters/bench';
import type { ReplayStats } from './child.ts';
import type { CpuWindow, EventCheck } from './measure.ts';
import type { RefundReport } from './refund.ts';
import { fmt, type Sample, type Summary } from './stats.ts';

/** The workloads, in the order they run (their declarations: workloads.ts). */
export const WORKLOAD_NAMES = ['floor', 'product-read', 'uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed', 'coupon-burst', 'mixed', 'mixed-uncached', 'mixed-replica', 'nats-cluster', 'slow-platform', 'refund'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** Who ran the orders: the service over HTTP, pgbench (the database's own limit), or one Node process (no HTTP) with the service's SQL or a plain row lock. */
export type Runner = 'service' | 'pgbench' | 'ceiling' | 'plain-row-lock' | 'unpartitioned' | 'interleaved';
export const RUNNER_NAMES: Record<Runner, string> = { service: 'service (HTTP)', pgbench: 'pgbench, textbook transaction',
  ceiling: 'same SQL through one Node process', 'plain-row-lock': 'plain row lock through one Node process', unpartitioned: 'unpartitioned reference',
  interleaved: 'service (HTTP), keyed and unkeyed orders alternating' };

export interface RunRecord {
  readonly workload: WorkloadName; readonly runner: Runner; readonly label: string; readonly summary: Summary; readonly samples: Sample[];
  /** The window's CPU and what it is divided by: orders (hot: units sold; refund: operations) or requests; its pg_stat_statements (null: none). */
  cost?: { cpu: CpuWindow; orders: number; requests: number; unit?: 'operation' }; statements?: StatementStats | null;
  pgbench?: { tps: number; transactions: number; command: string; summary: string[] };
  salesPerSecond?: number; exhaustedP99Ms?: number; lockWaits?: LockWaits; replays?: ReplayStats; refund?: RefundReport;
  replicaReads?: ReplicaReads; clusterDelivery?: ClusterDelivery;
  /** In a full run uniform and uniform-keyed each run twice, ABBA: this is the later of its workload's two windows. */
  secondWindow?: boolean;
  /** An interleaved window: its keyed and its unkeyed phases, each side's CPU and counts summed. */
  interleaved?: Interleaved;
}

/** A process's CPU is null when any phase did not measure it (a service or database elsewhere). */
type Side = { phases: number; orders: number; requests: number; serviceMs: number | null; postgresMs: number | null; loadMs: number | null };
export type Interleaved = { phaseMs: number; keyed: Side; unkeyed: Side };
type MeteredPhase = { keyed: boolean; orders: number; requests: number; cpu: Pick<CpuWindow, 'serviceMs' | 'postgresMs' | 'loadMs'> };

/** The phases of an interleaved window, summed by side: each side's CPU over its own orders, not a mean of phases (a phase is too short to weigh alone). */
export function interleavedSides(phaseMs: number, phases: readonly MeteredPhase[]): Interleaved {
  const add = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b);
  const side = (keyed: boolean): Side => phases.filter((p) => p.keyed === keyed).reduce((a, p) => ({ phases: a.phases + 1, orders: a.orders + p.orders,
    requests: a.requests + p.requests, serviceMs: add(a.serviceMs, p.cpu.serviceMs), postgresMs: add(a.postgresMs, p.cpu.postgresMs),
    loadMs: add(a.loadMs, p.cpu.loadMs) }), { phases: 0, orders: 0, requests: 0, serviceMs: 0 as number | null, postgresMs: 0 as number | null, loadMs: 0 as number | null });
  return { phaseMs, keyed: side(true), unkeyed: side(false) };
}

export interface Report {
  readonly startedAt: string; readonly target: string; readonly statements: boolean; readonly options: Record<string, number>;
  readonly pgbench: { readonly version: string | null; readonly threads: number }; // version null: not on PATH, the Node runners are the ceilings
  readonly machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  readonly events: EventCheck; readonly runs: RunRecord[]; readonly keyedVsUnkeyed: ReturnType<typeof keyedVsUnkeyed>; readonly violations: string[];
}

/** Keyed twins (and slow-platform) and the workload whose service run and ceilings each is set against. */
export const TWIN: Partial<Record<WorkloadName, WorkloadName>> = { 'uniform-keyed': 'uniform', 'hot-product-keyed': 'hot-product', 'slow-platform': 'uniform' };
const baseOf = (w: WorkloadName) => TWIN[w] ?? w;
const isHot = (w: WorkloadName) => baseOf(w) === 'hot-product';
export const ratio = (a: number | undefined, b: number | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const x = (r: number | null) => `${r ?? '–'}×`;
export const find = (runs: readonly RunRecord[], w: WorkloadName, r: Runner = 'service') => runs.find((x) => x.workload === w && x.runner === r);
/** A workload's figure against its ceilings: orders/s, or for the hot product sales/s. */
const figure = (r: RunRecord | undefined) => (r ? (isHot(r.workload) ? r.salesPerSecond : r.summary.ordersPerSecond) : undefined);
const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v >= 10 ? v.toFixed(1) : v.toFixed(3));
const tally = (o: Record<string, number>) => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
const lat = (l: { p50: number; p95: number; p99: number; max: number }) => [l.p50, l.p95, l.p99, l.max].map(fmt).join(' / ');

/** A Markdown table from column declarations: header, cell (numbers formatted), and 'left' for a left-aligned column. */
type Column<T> = readonly [header: string, cell: (row: T) => string | number | undefined, align?: 'left'];
export function table<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>): string[] {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const show = (v: string | number | undefined) => (v === undefined ? '' : typeof v === 'number' ? fmt(v) : v);
  const align = `|${columns.map((c, i) => (i === 0 || c[2] ? '---' : '---:')).join('|')}|`;
  return [line(columns.map((c) => c[0])), align, ...rows.map((r) => line(columns.map((c) => show(c[1](r))))), ''];
}
/** A section: its heading, then each paragraph (a string) or table (lines) followed by a blank line. */
export const section = (title: string, ...parts: Array<string | string[]>) =>
  [`## ${title}`, '', ...parts.flatMap((p) => (typeof p === 'string' ? [p, ''] : p))];

/**
 * A workload's service windows (ABBA gives uniform and its keyed twin two each) as one figure: each window's CPU per order
 * (per request, PostgreSQL's per order) and its rates, averaged with equal weights. Pooled CPU over pooled orders would weigh
 * a slow window less (fewer orders), and ABBA cancels a steady drift only when the early and the late window weigh the same.
 */
export function windowMeans(runs: readonly RunRecord[], w: WorkloadName) {
  const xs = runs.filter((x) => x.workload === w && x.runner === 'service');
  if (xs.length === 0) return null;
  const mean = (f: (x: RunRecord) => number | null | undefined) => {
    const vs = xs.map(f);
    return vs.every((v): v is number => typeof v === 'number') ? vs.reduce((a, v) => a + v, 0) / vs.length : null;
  };
  const per = (x: RunRecord, of: 'serviceMs' | 'postgresMs', n: 'orders' | 'requests') => {
    const [v, d] = [x.cost?.cpu[of], x.cost?.[n] ?? 0];
    return v == null || d === 0 ? null : v / d;
  };
  const rounded = (v: number | null) => (v === null ? undefined : Math.round(v * 100) / 100);
  return { windows: xs.length, abba: xs.some((x) => x.secondWindow), ordersPerSecond: rounded(mean((x) => x.summary.ordersPerSecond))!,
    p99Ms: rounded(mean((x) => x.summary.latencyMs.p99))!, salesPerSecond: rounded(mean((x) => x.salesPerSecond)),
    serviceMsPerOrder: mean((x) => per(x, 'serviceMs', 'orders')), serviceMsPerRequest: mean((x) => per(x, 'serviceMs', 'requests')),
    postgresMsPerOrder: mean((x) => per(x, 'postgresMs', 'orders')),
    replays: xs.every((x) => x.replays) ? xs.map((x) => x.replays!) : null };
}

/** Each keyed workload's service runs against its unkeyed twin's, same run; in a full run uniform's pair is ABBA, each side the mean of its two windows. */
export function keyedVsUnkeyed(runs: readonly RunRecord[]) {
  return (['uniform-keyed', 'hot-product-keyed'] as const).flatMap((workload) => {
    const [twin, k, u] = [baseOf(workload), windowMeans(runs, workload), windowMeans(runs, baseOf(workload))];
    if (!k || !u) return [];
    const pair = (unkeyed: number, keyed: number) => ({ unkeyed, keyed, ratio: ratio(keyed, unkeyed) });
    const sales = u.salesPerSecond !== undefined && k.salesPerSecond !== undefined ? { salesPerSecond: pair(u.salesPerSecond, k.salesPerSecond) } : {};
    const sum = (f: (r: ReplayStats) => number) => k.replays!.reduce((a, r) => a + f(r), 0);
    const replays = k.replays ? { sent: sum((r) => r.sent), matched: sum((r) => r.matched), mismatched: sum((r) => r.mismatched),
      p99Ms: Math.max(...k.replays.map((r) => r.latencyMs.p99)) } : null;
    // The service's CPU per order charges the replays' work to the orders; per request counts them as the requests they are.
    const cpu = (n: 'serviceMsPerOrder' | 'serviceMsPerRequest') => (u[n] === null || k[n] === null ? null : pair(u[n], k[n]));
    return [{ workload, twin, windows: { unkeyed: u.windows, keyed: k.windows, abba: u.abba && k.abba }, ordersPerSecond: pair(u.ordersPerSecond, k.ordersPerSecond),
      p99Ms: pair(u.p99Ms, k.p99Ms), ...sales, serviceMsPerOrder: cpu('serviceMsPerOrder'), serviceMsPerRequest: cpu('serviceMsPerRequest'), replays }];
  });
}

/** The run a workload's CPU is set against: pgbench's run of its base, or without pgbench its Node runner. */
const ceilingOf = (runs: readonly RunRecord[], w: WorkloadName) => find(runs, baseOf(w), 'pgbench') ??
  (baseOf(w) === 'uniform' || baseOf(w) === 'hot-product' ? find(runs, baseOf(w), isHot(w) ? 'plain-row-lock' : 'ceiling') : undefined);

/** The Targets lines: the issue-5 targets, against the Node runners they were set against, then what the workloads say (`extraTargets`). */
function targets(runs: readonly RunRecord[], extraTargets: string[]): string[] {
  const lines: string[] = [];
  for (const [w, runner, target] of [['uniform', 'ceiling', 0.5], ['hot-product', 'plain-row-lock', 1.5]] as const) {
    const r = ratio(figure(find(runs, w)), figure(find(runs, w, runner)));
    if (r !== null) lines.push(`issue-5 target, ${w} ≥ ${target}× the ${RUNNER_NAMES[runner]}: ${r}× ${r >= target ? 'met' : '**not met**'}`);
  }
  // --unpartitioned-reference: each workload's runs on the partitioned history (p) against those on the same rows, tables not partitioned (u),
  // ABBA: the mean of each side's two windows.
  for (const w of new Set(runs.filter((x) => x.runner === 'unpartitioned').map((x) => x.workload))) {
    const side = (runner: Runner) => runs.filter((x) => x.workload === w && x.runner === runner);
    const mean = (xs: RunRecord[], f: (x: RunRecord) => number | null | undefined) => xs.reduce((a, x) => a + (f(x) ?? 0), 0) / xs.length;
    const [p, u] = [side('service'), side('unpartitioned')];
    const [pf, uf, cpu] = [mean(p, figure), mean(u, figure), (xs: RunRecord[]) => ms(mean(xs, (x) => perOrder(x)?.total))];
    const r = ratio(pf, uf) ?? 0;
    lines.push(`issue-23 target, ${w} on partitioned tables ≥ 0.9× on unpartitioned (same rows, same run, ABBA means of ${p.length} and ${u.length} windows): ` +
      `${fmt(pf)} ÷ ${fmt(uf)} orders/s = **${r}×** ${r >= 0.9 ? 'met' : '**not met**'}; CPU ms per order, all processes: ${cpu(p)} ÷ ${cpu(u)}`);
  }
  return [...lines, ...issue24(runs), ...extraTargets];
}

/**
 * Issue 24's targets (the HTTP edge), against the 2026-12-02 run it set out from: uniform 0.702 ms of service CPU per order,
 * PostgreSQL 0.852, mixed 1,603 requests/s. uniform and its keyed twin: the means of their windows (ABBA in a full run).
 * Each verdict is on the figure as shown.
 */
function issue24(runs: readonly RunRecord[]): string[] {
  const lines: string[] = [];
  const verdict = (met: boolean) => (met ? 'met' : '**not met**');
  const shown = (v: number, digits: number) => Number(v.toFixed(digits));
  for (const [w, most] of [['floor', 0.06], ['product-read', 0.08]] as const) {
    const r = find(runs, w);
    const v = r ? servicePerRequest(r) : null;
    if (v !== null) lines.push(`issue-24 target, ${w}: service CPU ≤ ${most} ms per request: ${v.toFixed(3)} ${verdict(shown(v, 3) <= most)}`);
  }
  const [u, k] = [windowMeans(runs, 'uniform'), windowMeans(runs, 'uniform-keyed')];
  const windows = (p: NonNullable<typeof u>) => (p.windows > 1 ? ` (mean of ${p.windows} windows${p.abba ? ', ABBA' : ''})` : '');
  // An interleaved window judges keyed when it measured the service's CPU on both sides.
  const found = runs.find((r) => r.workload === 'uniform-keyed' && r.interleaved)?.interleaved;
  const mixedIn = found && [found.keyed, found.unkeyed].every((x) => x.orders > 0 && x.requests > 0 && x.serviceMs !== null) ? found : undefined;
  if (u?.serviceMsPerOrder != null) {
    lines.push(`issue-24 target, uniform: service CPU ≤ 0.25 ms per order${windows(u)}: ${u.serviceMsPerOrder.toFixed(3)} ${verdict(shown(u.serviceMsPerOrder, 3) <= 0.25)}`);
    if (k?.serviceMsPerOrder != null) {
      const [r, rq] = [k.serviceMsPerOrder / u.serviceMsPerOrder, k.serviceMsPerRequest! / u.serviceMsPerRequest!];
      // With an interleaved window, that window judges: whole windows compare moments the machine's speed set apart.
      lines.push(`issue-24 target, uniform-keyed: service CPU per order within 10 % of uniform's${windows(k)}: ${k.serviceMsPerOrder.toFixed(3)}, ` +
        `**${r.toFixed(2)}×** ${mixedIn ? '(judged on the interleaved window below)' : verdict(shown(r, 2) <= 1.1)} (per request, replays counted: ${rq.toFixed(2)}×)`);
    }
  }
  if (mixedIn) {
    const [ku, kk] = [mixedIn.unkeyed, mixedIn.keyed];
    const [a, b] = [ku.serviceMs! / ku.orders, kk.serviceMs! / kk.orders];
    const rq = kk.serviceMs! / kk.requests / (ku.serviceMs! / ku.requests);
    const of = (v: (s: Side) => number | null, n: 'orders' | 'requests') =>
      (v(kk) === null || v(ku) === null ? '–' : (v(kk)! / kk[n] / (v(ku)! / ku[n])).toFixed(2));
    lines.push(`issue-24 target, uniform-keyed: service CPU per order within 10 % of unkeyed orders', the same window in alternate ${mixedIn.phaseMs / 1000} s phases ` +
      `(${kk.phases} keyed, ${ku.phases} unkeyed): ${b.toFixed(3)} ÷ ${a.toFixed(3)} = **${(b / a).toFixed(2)}×** ${verdict(shown(b / a, 2) <= 1.1)} ` +
      `(per request, replays counted: ${rq.toFixed(2)}×; PostgreSQL per order ${of((x) => x.postgresMs, 'orders')}×, ` +
      `the load process per request ${of((x) => x.loadMs, 'requests')}×)`);
  }
  if (u?.postgresMsPerOrder != null) {
    lines.push(`issue-24 target, uniform: PostgreSQL's CPU per order not above 0.852 ms${windows(u)}: ${u.postgresMsPerOrder.toFixed(3)} ` +
      verdict(shown(u.postgresMsPerOrder, 3) <= 0.852));
  }
  const mixed = find(runs, 'mixed');
  if (mixed) lines.push(`issue-24 target, mixed ≥ 1.5 × 1,603 = 2,404.5 requests/s: ${fmt(mixed.summary.requestsPerSecond)} ${verdict(mixed.summary.requestsPerSecond >= 2404.5)}`);
  return lines;
}

/** The service's CPU per request in one window (every request, whatever its answer); null when not measured. */
const servicePerRequest = (r: RunRecord) => (r.cost?.cpu.serviceMs != null && r.cost.requests > 0 ? r.cost.cpu.serviceMs / r.cost.requests : null);

/** The service's CPU ÷ the load process's, one window: the service's cost in units of the load's fixed work per request. */
export const serviceOverLoad = (r: RunRecord) => (r.cost?.cpu.serviceMs != null && r.cost.cpu.loadMs ? r.cost.cpu.serviceMs / r.cost.cpu.loadMs : null);

/** CPU milliseconds per successful order (per operation for refund, per request for a run without orders). */
function perOrder(run: RunRecord | undefined) {
  const [c, n] = [run?.cost, run?.cost?.orders || run?.cost?.requests || 0];
  if (!c || n === 0) return null;
  const parts = [c.cpu.serviceMs, c.cpu.postgresMs, c.cpu.loadMs];
  const [service, postgres, load] = parts.map((p) => (p === null ? null : p / n));
  return { service, postgres, load, total: parts.some((p) => p !== null) ? parts.reduce<number>((a, b) => a + (b ?? 0), 0) / n : null };
}

/** pg_stat_statements over one run's window: where the database's time went. */
function statementTable(r: RunRecord): string[] {
  const [st, n] = [r.statements, r.cost?.orders || r.cost?.requests || 0];
  if (!st) return [];
  const per = (v: number) => (n > 0 ? (v / n).toFixed(3) : '');
  const query = (q: string) => (q.length > 160 ? `${q.slice(0, 157)}…` : q).replace(/\|/g, '\\|').replace(/`/g, "'");
  return [`### ${r.label}`, '', `Top-level execution time ${fmt(Math.round(st.toplevelMs))} ms in ${fmt(st.toplevelCalls)} calls = ` +
    `${per(st.toplevelMs)} ms per ${r.cost?.orders ? (r.cost.unit ?? 'order') : 'request'}.`, '', ...table(st.top, [
    ['statement', (t) => `\`${query(t.query)}\``], ['top level', (t) => (t.toplevel ? 'yes' : 'no'), 'left'], ['calls', (t) => t.calls],
    ['total ms', (t) => Math.round(t.totalMs)], [`ms per ${r.cost?.unit ?? 'order'}`, (t) => per(t.totalMs)],
    ['rows per call', (t) => (t.calls ? (t.rows / t.calls).toFixed(2) : '')],
  ])];
}

/** The table the report opens with: what one order costs each process. */
function cpuSection({ runs }: Report): string[] {
  const pgVsCeiling = (r: RunRecord, [p, c] = [perOrder(r)?.postgres, perOrder(ceilingOf(runs, r.workload))?.postgres]) =>
    (r.runner === 'pgbench' ? '1×' : p != null && c ? `${(p / c).toFixed(2)}×` : '');
  return !runs.some((r) => r.cost) ? [] : section(
    'CPU ms per order',
    "utime + stime (/proc) in each run's window ÷ its successful orders (hot: units sold; refund: orders + refunds + cancels, \"ops\"; none: " +
      "requests): apps/api, the postmaster and all under it, the load process (or pgbench); then the service's CPU per request (every request, " +
      "whatever its answer); last, the service's CPU ÷ the load process's in the window: the load's work per request is the same in every window " +
      "of a workload, so this moves with the service's code and far less with the machine's speed, which a shared host changes by a third " +
      'between windows minutes apart; how: docs/performance.md.',
    table(runs.filter((r) => r.cost), [
      ['run', (r) => r.label], ['window s', (r) => (r.cost!.cpu.wallMs / 1000).toFixed(2)],
      ['orders', ({ cost: c }) => (c!.orders > 0 ? `${fmt(c!.orders)}${c!.unit ? ' ops' : ''}` : `${fmt(c!.requests)} requests`)],
      ['service', (r) => ms(perOrder(r)?.service)], ['PostgreSQL', (r) => ms(perOrder(r)?.postgres)],
      ['load generator', (r) => ms(perOrder(r)?.load)], ['total', (r) => ms(perOrder(r)?.total)], ['PostgreSQL ÷ ceiling', pgVsCeiling],
      ['service per request', (r) => (servicePerRequest(r) === null ? '' : ms(servicePerRequest(r)))],
      ['service ÷ load', (r) => (r.runner === 'service' ? serviceOverLoad(r)?.toFixed(2) ?? '' : '')],
    ]),
  );
}

/** Each workload against its ceilings, the figure that matters: orders/s, or sales/s for the hot product. */
function ceilingSection({ runs, pgbench: { version: v, threads } }: Report): string[] {
  const rows = (['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed'] as const).flatMap((w) => (find(runs, w) ? [{ w, s: find(runs, w)! }] : []));
  const against = (runner: Runner, name: string, ratioName = 'service ÷ it'): Array<Column<(typeof rows)[number]>> => {
    const [other, bold] = [({ w }: { w: WorkloadName }) => find(runs, baseOf(w), runner), runner === 'pgbench' ? '**' : ''];
    return [[name, (row) => (other(row) ? (figure(other(row)) ?? 0) : runner === 'pgbench' && !v ? 'not installed' : '')],
      [ratioName, (row) => (other(row) ? `${bold}${x(ratio(figure(row.s), figure(other(row))))}${bold}` : '')]];
  };
  const pgbenchLine = ({ label, cost, pgbench: p }: RunRecord) => {
    const perTx = (v: number | null | undefined) => (v == null || !p!.transactions ? 'n/a' : ms(v / p!.transactions));
    const cpu = cost ? `; CPU per transaction: PostgreSQL ${perTx(cost.cpu.postgresMs)} ms, pgbench ${perTx(cost.cpu.loadMs)} ms` : '';
    return `- ${label}: ${fmt(p!.transactions)} transactions in the window, ${fmt(p!.tps)}/s${cpu}; \`${p!.command}\``;
  };
  return rows.length === 0 ? [] : [...section(
    "Against the database's own limit",
    `${v ? `${v}, \`-M prepared\`, a client per load connection, ${threads} threads,` : '**pgbench not installed: the Node runners instead.**'} ` +
      "the textbook order transaction on its own rows, same server, same run; then the service's own SQL and a plain row lock from one Node process.",
    table(rows, [
      ['workload', ({ w }) => `${w} (${isHot(w) ? 'sales/s' : 'orders/s'})`], ['service', ({ s }) => figure(s) ?? 0],
      ['service p99 ms', ({ s }) => s.summary.latencyMs.p99],
      ...against('pgbench', 'pgbench', 'service ÷ pgbench'), ...against('ceiling', 'same SQL through one Node process'),
      ...against('plain-row-lock', 'plain row lock through one Node process'),
    ]),
  ), ...runs.filter((r) => r.pgbench).map(pgbenchLine), ''];
}

/** Each keyed run's replays, and the keyed workloads against their twins. */
function keyedSection({ runs, keyedVsUnkeyed: pairs, options }: Report): string[] {
  const keyedRuns = runs.filter((r) => r.replays);
  return keyedRuns.length === 0 ? [] : section(
    'Keyed ÷ unkeyed',
    ...(pairs.length === 0 ? [] : ["Each keyed workload: its twin's load, same run, an `Idempotency-Key` on every order." + (pairs.some((c) => c.windows.abba)
      ? ' uniform\'s pair ran ABBA (uniform, keyed, keyed, uniform): each side\'s figures are the means of its two windows.'
      : pairs.some((c) => c.windows.unkeyed > 1 || c.windows.keyed > 1) ? " A side with more than one window: the means of its windows." : ''), table(pairs, [
      ['workload', (c) => c.twin], ['windows', (c) => `${c.windows.unkeyed} + ${c.windows.keyed}`], ['orders/s unkeyed', (c) => c.ordersPerSecond.unkeyed], ['orders/s keyed', (c) => c.ordersPerSecond.keyed],
      ['keyed ÷ unkeyed', (c) => `**${x(c.ordersPerSecond.ratio)}**`], ['p99 ms unkeyed', (c) => c.p99Ms.unkeyed], ['p99 ms keyed', (c) => c.p99Ms.keyed],
      ['keyed ÷ unkeyed', (c) => `**${x(c.p99Ms.ratio)}**`], ['sales/s keyed ÷ unkeyed', (c) => (c.salesPerSecond ? x(c.salesPerSecond.ratio) : '')],
      ['service CPU per order, keyed ÷ unkeyed', (c) => (c.serviceMsPerOrder ? x(c.serviceMsPerOrder.ratio) : '')],
      ['per request (replays counted)', (c) => (c.serviceMsPerRequest ? x(c.serviceMsPerRequest.ratio) : '')],
    ])]),
    `Replays: about ${Math.round((options.replayShare ?? 0.1) * 100)}% of the keyed 201s, sent again 5–100 ms later (warm-up included), must ` +
      'answer 201, `idempotent-replayed: true`, the first body. Not orders; those answered in the window are counted as requests.',
    table(keyedRuns, [
      ['run', (r) => r.label], ['replays sent', (r) => r.replays!.sent], ['matched', (r) => r.replays!.matched],
      ['byte-identical', (r) => r.replays!.byteIdentical], ['mismatched', (r) => r.replays!.mismatched],
      ['replay p50 ms', (r) => r.replays!.latencyMs.p50], ['replay p99 ms', (r) => r.replays!.latencyMs.p99],
    ]),
  );
}

/** refund's window, each kind on its own, and its whole-run totals. */
function refundSection(runs: readonly RunRecord[]): string[] {
  const rows = runs.flatMap((r) => (r.refund ? [{ label: r.label, ...r.refund }] : []));
  const totals = ({ label, run: r, window: w, database: d, events: e }: (typeof rows)[number]) =>
    `- ${label}: ${fmt(r.placed)} orders placed (${fmt(r.couponOrders)} with a coupon); answered: orders ${tally(w.orders.outcomes)}; refunds ` +
    `${tally(w.refunds.outcomes)}; cancels ${tally(w.cancels.outcomes)} (${fmt(r.requeued)} queued again after a 429). In the database ` +
    `${fmt(d.cancelledAsPaid)} CANCELLED with refunded = paid; as before: ${fmt(d.balances)} balances, ${fmt(d.stock)} products' stock, ` +
    `${fmt(d.copies)} coupon copies. ${e ? `Events: ${fmt(e.recorded)} recorded, ${fmt(e.inOrder)} orders' accepted in order.` : 'No receiver (--url).'}`;
  return rows.length === 0 ? [] : section(
    'Refund: orders given back in parts, then cancelled',
    "Orders of 1–3 products, 2 units each, a fifth or more with a coupon, each refunded by its owner in 1–2 random parts, then cancelled, each step a free " +
      "connection's next request. The window is the whole run.",
    table(rows, [
      ['run', (r) => r.label], ['s', (r) => r.window.seconds],
      ...(['orders', 'refunds', 'cancels'] as const).flatMap((k): Array<Column<(typeof rows)[number]>> => [[k, (r) => r.window[k].n],
        [`${k}/s`, (r) => r.window[k].perSecond], [`${k.slice(0, -1)} p50 / p95 / p99 / max ms`, (r) => lat(r.window[k].latencyMs), 'left']]),
      ['ops/s', (r) => r.window.operationsPerSecond],
    ]),
    [...rows.map(totals), ''],
  );
}

export function markdownReport(report: Report, extraTargets: string[]): string {
  const { machine: m, events: e, runs } = report;
  return [
    `# Benchmark ${report.startedAt}`, '',
    `${report.target}; ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}; ` +
      Object.entries(report.options).map(([k, v]) => `${k} ${v}`).join(', '), '',
    ...cpuSection(report),
    ...ceilingSection(report),
    ...section('Targets', [...targets(runs, extraTargets).map((l) => `- ${l}`), '']),
    ...section('Runs', table(runs, [
      ['run', (r) => r.label], ['requests', (r) => r.summary.requests], ['req/s', (r) => r.summary.requestsPerSecond],
      ['orders/s', (r) => r.summary.ordersPerSecond], ['sales/s', (r) => r.salesPerSecond], ['p50 ms', (r) => r.summary.latencyMs.p50],
      ['p95 ms', (r) => r.summary.latencyMs.p95], ['p99 ms', (r) => r.summary.latencyMs.p99], ['max ms', (r) => r.summary.latencyMs.max],
      ['outcomes', (r) => tally(r.summary.outcomes), 'left'],
    ])),
    ...keyedSection(report),
    ...refundSection(runs),
    ...(report.statements
      ? section("Statements (pg_stat_statements, each run's window)", '`track = all`: nested ones (not top level) also in their caller\'s time.',
        runs.flatMap(statementTable))
      : section('Statements', 'pg_stat_statements is not loaded on this server.')),
    ...section('Invariants', `Events: ${fmt(e.recorded)} recorded, ${fmt(e.undelivered)} undelivered` +
      (e.received === null ? '' : `, ${fmt(e.received)} distinct received, ${e.duplicates} repeated deliveries`)),
    report.violations.length === 0
      ? 'All hold: balances = ledgers, every order paid once with one event, its refunds and cancel adding up to what it paid with an event each, ' +
        'coupons never past their total, stock + sold = initial, every event delivered once' + (runs.some((r) => r.refund) ? '; refund: every order ' +
        "CANCELLED with refunded = paid, its refunds those answered 201, balances, stock and coupon copies as before, its events in recorded order." : '.')
      : ['**VIOLATED:**', ...report.violations.map((v) => `- ${v}`)].join('\n'),
  ].join('\n');
}
