import type { CpuWindow, StatementStats } from './meter.ts';
import type { LockWaits, EventCheck } from './observe.ts';
import type { RefundReport } from './refund.ts';
import { KEYED_TWIN, type KeyedWorkload, type ReplayStats, type Sample, type WorkloadName } from './protocol.ts';
import type { Summary } from './stats.ts';

/**
 * Who ran the orders: the service over HTTP; pgbench with the textbook transaction (the
 * database's own limit); or, from one Node process with no HTTP, the service's own SQL
 * ('ceiling', the ceiling before pgbench) or the plain row-lock transaction.
 */
export type Runner = 'service' | 'pgbench' | 'ceiling' | 'plain-row-lock';

export const RUNNER_NAMES: Record<Runner, string> = {
  service: 'service (HTTP)',
  pgbench: 'pgbench, textbook transaction',
  ceiling: 'same SQL through one Node process',
  'plain-row-lock': 'plain row lock through one Node process',
};

/** The CPU one run's measured window cost, and the orders it completed in it. */
export interface RunCost {
  readonly cpu: CpuWindow;
  /** Successful orders in the window (hot: units sold). */
  readonly orders: number;
  /** Requests or transactions in the window, for runs that make no orders. */
  readonly requests: number;
  /** What `orders` counts when it is not orders: refund's orders + cancellations that succeeded. */
  readonly unit?: 'operation';
}

export interface RunRecord {
  readonly workload: WorkloadName;
  readonly runner: Runner;
  readonly label: string;
  readonly summary: Summary;
  readonly samples: Sample[];
  cost?: RunCost;
  /** pg_stat_statements over the measured window; null when the server does not load it. */
  statements?: StatementStats | null;
  /** pgbench runs: its transactions per second, command and own summary. */
  pgbench?: { tps: number; transactions: number; command: string; summary: string[] };
  salesPerSecond?: number;
  exhaustedP99Ms?: number;
  lockWaits?: LockWaits;
  /** Keyed workloads: the orders sent again with the same key (not counted in orders/s). */
  replays?: ReplayStats;
  /** refund: orders and cancellations, each kind on its own, and what the database holds after. */
  refund?: RefundReport;
}

/** A keyed workload's service run set against its unkeyed twin's of the same benchmark run. */
export interface KeyedComparison {
  readonly workload: KeyedWorkload;
  readonly twin: WorkloadName;
  readonly ordersPerSecond: { unkeyed: number; keyed: number; ratio: number | null };
  readonly p99Ms: { unkeyed: number; keyed: number; ratio: number | null };
  /** hot-product only: sales per second while there was stock. */
  readonly salesPerSecond?: { unkeyed: number; keyed: number; ratio: number | null };
  readonly replays: { sent: number; matched: number; mismatched: number; p99Ms: number } | null;
}

export interface Report {
  readonly startedAt: string;
  readonly target: string;
  /** pgbench's version, or null when it is not on PATH (the Node runners are the ceilings then). */
  readonly pgbench: { readonly version: string | null; readonly threads: number };
  /** pg_stat_statements readable in the benchmark's database. */
  readonly statements: boolean;
  readonly machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  readonly options: Record<string, number>;
  readonly events: EventCheck;
  readonly runs: RunRecord[];
  /** keyed ÷ unkeyed, for each keyed workload whose twin ran too. */
  readonly keyedVsUnkeyed: KeyedComparison[];
  readonly violations: string[];
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);

export function keyedVsUnkeyed(runs: readonly RunRecord[]): KeyedComparison[] {
  const out: KeyedComparison[] = [];
  for (const [workload, twin] of Object.entries(KEYED_TWIN) as Array<[KeyedWorkload, WorkloadName]>) {
    const k = runs.find((r) => r.workload === workload && r.runner === 'service');
    const u = runs.find((r) => r.workload === twin && r.runner === 'service');
    if (!k || !u) continue;
    const pair = (unkeyed: number, keyed: number) => ({ unkeyed, keyed, ratio: ratio(keyed, unkeyed) });
    out.push({
      workload,
      twin,
      ordersPerSecond: pair(u.summary.ordersPerSecond, k.summary.ordersPerSecond),
      p99Ms: pair(u.summary.latencyMs.p99, k.summary.latencyMs.p99),
      ...(u.salesPerSecond !== undefined && k.salesPerSecond !== undefined ? { salesPerSecond: pair(u.salesPerSecond, k.salesPerSecond) } : {}),
      replays: k.replays ? { sent: k.replays.sent, matched: k.replays.matched, mismatched: k.replays.mismatched, p99Ms: k.replays.latencyMs.p99 } : null,
    });
  }
  return out;
}

const isHot = (w: WorkloadName) => w === 'hot-product' || w === 'hot-product-keyed';
/** A workload's figure against its ceilings: orders/s, or for the hot product sales/s. */
const figure = (r: RunRecord | undefined) => (r ? (isHot(r.workload) ? r.salesPerSecond : r.summary.ordersPerSecond) : undefined);
const baseOf = (w: WorkloadName): WorkloadName => (w in KEYED_TWIN ? KEYED_TWIN[w as KeyedWorkload] : w === 'slow-platform' ? 'uniform' : w);

/**
 * The ceiling a workload is measured against: pgbench's run of its base workload, or where
 * pgbench is not installed, today's Node runner (the same SQL for uniform, the plain row lock for
 * the hot product), labelled as the fallback it is.
 */
export function ceilingOf(report: Report, workload: WorkloadName): { run: RunRecord; name: string; fallback: boolean } | null {
  const base = baseOf(workload);
  const find = (r: Runner) => report.runs.find((x) => x.workload === base && x.runner === r);
  const p = find('pgbench');
  if (p) return { run: p, name: 'pgbench', fallback: false };
  const f = base === 'hot-product' ? find('plain-row-lock') : base === 'uniform' ? find('ceiling') : undefined;
  return f ? { run: f, name: `${RUNNER_NAMES[f.runner]} (fallback: pgbench not installed)`, fallback: true } : null;
}

export function targets(report: Report): string[] {
  const find = (w: WorkloadName, r: Runner) => report.runs.find((x) => x.workload === w && x.runner === r);
  const lines: string[] = [];
  for (const w of ['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed'] as const) {
    const s = find(w, 'service');
    const c = ceilingOf(report, w);
    if (!s || !c) continue;
    const hot = isHot(w);
    const unit = hot ? 'sales/s' : 'orders/s';
    const r = ratio(figure(s), figure(c.run));
    const tps = c.run.pgbench ? ` (${fmt(c.run.pgbench.tps)} transactions/s)` : '';
    const others = (hot ? (['ceiling', 'plain-row-lock'] as const) : (['ceiling'] as const))
      .filter((k) => k !== c.run.runner)
      .map((k) => find(baseOf(w), k))
      .filter((x): x is RunRecord => x !== undefined)
      .map((x) => `${ratio(figure(s), figure(x)) ?? '–'}× the ${RUNNER_NAMES[x.runner]}'s ${fmt(figure(x) ?? 0)}`);
    lines.push(
      `${w}: service ${fmt(figure(s) ?? 0)} ${unit} = **${r ?? '–'}×** the ${c.fallback ? c.name : 'database\'s own limit (pgbench, textbook transaction, same server, same run)'}: ${fmt(figure(c.run) ?? 0)} ${unit}${tps}` +
        (others.length ? `; ${others.join('; ')}` : '') +
        `; p99 ${fmt(s.summary.latencyMs.p99)} ms`,
    );
  }
  // The issue-5 targets, against the Node runners they were set against.
  const uService = find('uniform', 'service');
  const uCeiling = find('uniform', 'ceiling');
  const u = ratio(uService?.summary.ordersPerSecond, uCeiling?.summary.ordersPerSecond);
  if (u !== null) lines.push(`issue-5 target, uniform ≥ 0.5× the same SQL through one Node process: ${u}× ${u >= 0.5 ? 'met' : '**not met**'}`);
  const hService = find('hot-product', 'service');
  const h = ratio(hService?.salesPerSecond, find('hot-product', 'plain-row-lock')?.salesPerSecond);
  if (h !== null) lines.push(`issue-5 target, hot-product ≥ 1.5× the plain row lock through one Node process: ${h}× ${h >= 1.5 ? 'met' : '**not met**'}`);
  const burst = find('coupon-burst', 'service');
  if (burst) {
    lines.push(`coupon-burst: COUPON_EXHAUSTED answered with p99 ${fmt(burst.exhaustedP99Ms ?? 0)} ms; sessions waiting on a lock: at most ${burst.lockWaits?.max ?? '?'}, on average ${burst.lockWaits?.mean ?? '?'} (${burst.lockWaits?.samples ?? 0} samples)`);
  }
  const refund = find('refund', 'service')?.refund;
  if (refund) {
    const w = refund.window;
    lines.push(
      `refund (every second order cancelled by its owner as its 201 arrives): ${fmt(w.ordersPerSecond)} orders/s + ${fmt(w.cancelsPerSecond)} cancellations/s = ${fmt(w.operationsPerSecond)} operations/s` +
        (uService ? ` (uniform: ${fmt(uService.summary.ordersPerSecond)} orders/s)` : '') +
        `; p99 ${fmt(w.orderLatencyMs.p99)} ms per order, ${fmt(w.cancelLatencyMs.p99)} ms per cancellation`,
    );
  }
  const slow = find('slow-platform', 'service');
  if (slow && uService) {
    lines.push(`slow-platform (every event delivery answered after 1 s): ${fmt(slow.summary.ordersPerSecond)} orders/s = **${ratio(slow.summary.ordersPerSecond, uService.summary.ordersPerSecond)}×** uniform's with a prompt platform; p99 ${fmt(slow.summary.latencyMs.p99)} ms vs ${fmt(uService.summary.latencyMs.p99)} ms`);
  }
  for (const c of report.keyedVsUnkeyed) {
    const replays = c.replays
      ? `; replays ${fmt(c.replays.sent)} sent, ${fmt(c.replays.matched)} matched, ${fmt(c.replays.mismatched)} mismatched`
      : '';
    lines.push(
      `${c.workload} (every order with its own Idempotency-Key): ${fmt(c.ordersPerSecond.keyed)} orders/s = **${c.ordersPerSecond.ratio ?? '–'}×** ${c.twin}'s ${fmt(c.ordersPerSecond.unkeyed)}; ` +
        `p99 ${fmt(c.p99Ms.keyed)} ms = ${c.p99Ms.ratio ?? '–'}× its ${fmt(c.p99Ms.unkeyed)} ms${replays}`,
    );
  }
  return lines;
}

/** CPU milliseconds per successful order (per request for a run that makes none). */
export function perOrder(run: RunRecord): { service: number | null; postgres: number | null; load: number | null; total: number | null; per: 'order' | 'operation' | 'request' } | null {
  const c = run.cost;
  if (!c) return null;
  const per = c.orders > 0 ? (c.unit ?? 'order') : 'request';
  const n = c.orders > 0 ? c.orders : c.requests;
  if (n === 0) return null;
  const each = (ms: number | null) => (ms === null ? null : ms / n);
  const parts = [c.cpu.serviceMs, c.cpu.postgresMs, c.cpu.loadMs];
  return {
    service: each(c.cpu.serviceMs),
    postgres: each(c.cpu.postgresMs),
    load: each(c.cpu.loadMs),
    total: parts.some((p) => p !== null) ? each(parts.reduce<number>((a, b) => a + (b ?? 0), 0)) : null,
    per,
  };
}

const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v >= 10 ? v.toFixed(1) : v.toFixed(3));

/** The table the report opens with: what one order costs each process. */
function cpuSection(report: Report): string[] {
  const rows = report.runs.filter((r) => r.cost);
  if (rows.length === 0) return [];
  const out = [
    '## CPU ms per order',
    '',
    'CPU time (utime + stime from /proc/<pid>/stat) spent in each run\'s measured window ÷ the successful orders completed in it ' +
      '(hot product: units sold; refund: orders + cancellations, "ops"; a run without orders: per request). **service**: the apps/api process; **PostgreSQL**: this cluster\'s ' +
      'postmaster and every process under it (backends, background workers; ended backends through the postmaster\'s cutime); ' +
      '**load generator**: the HTTP load process, the Node ceiling process (load and the order code in one), or pgbench. ' +
      'Under pgbench the service column is its outbox relay delivering pgbench\'s events. ' +
      '**PostgreSQL ÷ ceiling**: this run\'s PostgreSQL ms per order ÷ that of its ceiling run (pgbench when installed).',
    '',
    '| run | window s | orders | service | PostgreSQL | load generator | total | PostgreSQL ÷ ceiling |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const p = perOrder(r)!;
    const c = ceilingOf(report, r.workload);
    const cp = c ? perOrder(c.run) : null;
    const rel = p && cp && p.postgres !== null && cp.postgres ? `${(p.postgres / cp.postgres).toFixed(2)}×` : '';
    const n = r.cost!.orders > 0 ? `${fmt(r.cost!.orders)}${r.cost!.unit ? ' ops' : ''}` : `${fmt(r.cost!.requests)} requests`;
    out.push(
      `| ${r.label} | ${(r.cost!.cpu.wallMs / 1000).toFixed(2)} | ${n} | ${ms(p?.service)} | ${ms(p?.postgres)} | ${ms(p?.load)} | ${ms(p?.total)} | ${r.runner === 'pgbench' ? '1×' : rel} |`,
    );
  }
  out.push('');
  return out;
}

/** Each workload against its ceilings, the figure that matters: orders/s, or sales/s for the hot product. */
function ceilingSection(report: Report): string[] {
  const find = (w: WorkloadName, r: Runner) => report.runs.find((x) => x.workload === w && x.runner === r);
  const out: string[] = [];
  for (const w of ['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed'] as const) {
    const s = find(w, 'service');
    if (!s) continue;
    const base = baseOf(w);
    const p = find(base, 'pgbench');
    const n = find(base, 'ceiling');
    const l = find(base, 'plain-row-lock');
    const cell = (x: RunRecord | undefined) => (x ? `${fmt(figure(x) ?? 0)} | ${ratio(figure(s), figure(x)) ?? '–'}×` : ' | ');
    out.push(
      `| ${w} (${isHot(w) ? 'sales/s' : 'orders/s'}) | ${fmt(figure(s) ?? 0)} | ${p ? cell(p) : report.pgbench.version ? ' | ' : 'not installed | '} | ${cell(n)} | ${isHot(w) ? cell(l) : ' | '} |`,
    );
  }
  if (out.length === 0) return [];
  return [
    "## Against the database's own limit",
    '',
    (report.pgbench.version
      ? `The ceiling is ${report.pgbench.version}, \`-M prepared\`, as many clients as the load has connections, ${report.pgbench.threads} threads, `
      : '**pgbench is not installed here (not on PATH): the headline ratios fall back to the Node runners, labelled so.** With it, the ceiling is pgbench ') +
      'running the textbook order transaction on the same server in the same run, on users and products of its own (BEGIN; each product row locked with SELECT … FOR UPDATE, in id order; ' +
      'one UPDATE per item; the balance updated; order, items, ledger entry and event inserted; COMMIT; for the hot product, the plain row-lock transaction: the hot row locked first). ' +
      'The second column is the ceiling used until now: the service\'s own order code and SQL called from one Node process, no HTTP. Keyed twins are set against their unkeyed workload\'s ceilings.',
    '',
    '| workload | service | pgbench | service ÷ pgbench | same SQL through one Node process | service ÷ it | plain row lock through one Node process | service ÷ it |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...out,
    '',
    ...report.runs.filter((r) => r.pgbench).map((r) => {
      const c = r.cost?.cpu;
      const perTx = (v: number | null | undefined) => (v === null || v === undefined || !r.pgbench!.transactions ? 'n/a' : ms(v / r.pgbench!.transactions));
      return (
        `- ${r.label}: ${fmt(r.pgbench!.transactions)} transactions in the window, ${fmt(r.pgbench!.tps)}/s` +
        (c ? `; CPU per transaction: PostgreSQL ${perTx(c.postgresMs)} ms, pgbench ${perTx(c.loadMs)} ms` : '') +
        `; \`${r.pgbench!.command}\``
      );
    }),
    '',
  ];
}

/** pg_stat_statements over each run's window: where the database's time went. */
function statementSection(report: Report): string[] {
  if (!report.statements) return ['## Statements', '', 'pg_stat_statements is not loaded on this server.', ''];
  const out = [
    '## Statements (pg_stat_statements, each run\'s window)',
    '',
    'Reset as each window opened, read as it closed; `track = all`, so statements inside write_orders appear beside the call that ran them (not top level), and their time is also in that call\'s.',
    '',
  ];
  for (const r of report.runs) {
    const st = r.statements;
    if (!st) continue;
    const n = r.cost?.orders || r.cost?.requests || 0;
    const per = (v: number) => (n > 0 ? (v / n).toFixed(3) : '');
    out.push(
      `### ${r.label}`,
      '',
      `Top-level execution time ${fmt(Math.round(st.toplevelMs))} ms in ${fmt(st.toplevelCalls)} calls = ${per(st.toplevelMs)} ms per ${r.cost?.orders ? (r.cost.unit ?? 'order') : 'request'}.`,
      '',
      `| statement | top level | calls | total ms | ms per ${r.cost?.unit ?? 'order'} | rows per call |`,
      '|---|---|---:|---:|---:|---:|',
      ...st.top.map((t) => {
        const q = t.query.length > 160 ? `${t.query.slice(0, 157)}…` : t.query;
        return `| \`${q.replace(/\|/g, '\\|').replace(/`/g, "'")}\` | ${t.toplevel ? 'yes' : 'no'} | ${fmt(t.calls)} | ${fmt(Math.round(t.totalMs))} | ${per(t.totalMs)} | ${t.calls ? (t.rows / t.calls).toFixed(2) : ''} |`;
      }),
      '',
    );
  }
  return out;
}

/** The statements of one run, for the console as it ends. */
export function statementLines(run: RunRecord): string[] {
  const st = run.statements;
  if (!st) return [];
  const n = run.cost?.orders || run.cost?.requests || 0;
  const per = (v: number) => (n > 0 ? (v / n).toFixed(3) : '-');
  const unit = run.cost?.orders ? (run.cost.unit ?? 'order') : 'request';
  return [
    `  top statements of ${run.label} (${fmt(Math.round(st.toplevelMs))} ms top-level, ${per(st.toplevelMs)} ms per ${unit}):`,
    `    total ms   ${unit === 'operation' ? '   ms/op' : 'ms/order'}     calls  rows/call  statement`,
    ...st.top.map(
      (t) =>
        `    ${String(Math.round(t.totalMs)).padStart(8)}  ${per(t.totalMs).padStart(9)}  ${String(t.calls).padStart(8)}  ${(t.calls ? t.rows / t.calls : 0).toFixed(2).padStart(9)}  ${t.toplevel ? '' : '(nested) '}${t.query.slice(0, 110)}`,
    ),
  ];
}

export function markdownReport(report: Report): string {
  const out: string[] = [
    `# Benchmark ${report.startedAt}`,
    '',
    `${report.target}; ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; ` +
      Object.entries(report.options).map(([k, v]) => `${k} ${v}`).join(', '),
    '',
    ...cpuSection(report),
    ...ceilingSection(report),
    '## Targets',
    '',
    ...targets(report).map((l) => `- ${l}`),
    '',
    '## Runs',
    '',
    '| run | requests | req/s | orders/s | sales/s | p50 ms | p95 ms | p99 ms | max ms | outcomes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...report.runs.map((r) => {
      const s = r.summary;
      const outcomes = Object.entries(s.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
      return `| ${r.label} | ${fmt(s.requests)} | ${fmt(s.requestsPerSecond)} | ${fmt(s.ordersPerSecond)} | ${r.salesPerSecond === undefined ? '' : fmt(r.salesPerSecond)} | ${fmt(s.latencyMs.p50)} | ${fmt(s.latencyMs.p95)} | ${fmt(s.latencyMs.p99)} | ${fmt(s.latencyMs.max)} | ${outcomes} |`;
    }),
    '',
    ...keyedSection(report),
    ...refundSection(report),
    ...statementSection(report),
    '## Invariants',
    '',
    `Events: ${fmt(report.events.recorded)} recorded, ${fmt(report.events.undelivered)} undelivered` +
      (report.events.received === null ? '' : `, ${fmt(report.events.received)} distinct received, ${report.events.duplicates} repeated deliveries`),
    '',
    report.violations.length === 0
      ? 'All hold: balances = ledgers, every order paid once with one event (a cancelled one refunded once with a second event), coupons never past their total, stock + sold = initial, every event delivered once' +
        (report.runs.some((r) => r.refund) ? '; refund: every 200 cancellation\'s order CANCELLED and refunded once, as many CANCELLED orders as 200 answers, no cancellation answered 5xx, each order.cancelled accepted after its order.paid.' : '.')
      : ['**VIOLATED:**', ...report.violations.map((v) => `- ${v}`)].join('\n'),
  ];
  return out.join('\n');
}

/** keyed ÷ unkeyed, and the keyed runs' replays; empty when no keyed workload ran. */
function keyedSection(report: Report): string[] {
  const keyedRuns = report.runs.filter((r) => r.replays);
  if (keyedRuns.length === 0) return [];
  const out = ['## Keyed ÷ unkeyed', ''];
  if (report.keyedVsUnkeyed.length > 0) {
    out.push(
      'Each keyed workload is its twin\'s load with an `Idempotency-Key` on every order (the service run, same run, same requests).',
      '',
      '| workload | orders/s unkeyed | orders/s keyed | keyed ÷ unkeyed | p99 ms unkeyed | p99 ms keyed | keyed ÷ unkeyed | sales/s keyed ÷ unkeyed |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...report.keyedVsUnkeyed.map(
        (c) =>
          `| ${c.twin} | ${fmt(c.ordersPerSecond.unkeyed)} | ${fmt(c.ordersPerSecond.keyed)} | **${c.ordersPerSecond.ratio ?? '–'}×** | ` +
          `${fmt(c.p99Ms.unkeyed)} | ${fmt(c.p99Ms.keyed)} | **${c.p99Ms.ratio ?? '–'}×** | ${c.salesPerSecond ? `${c.salesPerSecond.ratio ?? '–'}×` : ''} |`,
      ),
      '',
    );
  }
  out.push(
    `Replays: about ${Math.round((report.options.replayShare ?? 0.1) * 100)}% of the keyed orders answered 201, sent again 5–100 ms later with the same key and body, over the same connections, during the load (warm-up included); ` +
      'each must answer 201, `idempotent-replayed: true` and the first body. They are not counted as orders.',
    '',
    '| run | replays sent | matched | byte-identical | mismatched | replay p50 ms | replay p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...keyedRuns.map((r) => {
      const p = r.replays!;
      return `| ${r.label} | ${fmt(p.sent)} | ${fmt(p.matched)} | ${fmt(p.byteIdentical)} | ${fmt(p.mismatched)} | ${fmt(p.latencyMs.p50)} | ${fmt(p.latencyMs.p99)} |`;
    }),
    '',
  );
  return out;
}

/** refund: orders and cancellations racing, each kind on its own; empty when it did not run. */
function refundSection(report: Report): string[] {
  const runs = report.runs.filter((r) => r.refund);
  if (runs.length === 0) return [];
  const lat = (l: { p50: number; p95: number; p99: number; max: number }) => `${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)} / ${fmt(l.max)}`;
  return [
    '## Refund: orders and cancellations racing',
    '',
    'Uniform orders (three random products, one unit each); every second order answered 201 is cancelled by its owner as the next request of a free connection, ' +
      'so cancellations (stock back, refund, `order.cancelled`) race new orders on the same rows. Rates and latencies are the measured window\'s; ' +
      'the cancellations of orders answered as the loop ended are sent after it, counted in the totals, not in the rates.',
    '',
    '| run | s | orders | orders/s | cancellations | cancellations/s | ops/s | order p50 / p95 / p99 / max ms | cancellation p50 / p95 / p99 / max ms |',
    '|---|---:|---:|---:|---:|---:|---:|---|---|',
    ...runs.map((r) => {
      const w = r.refund!.window;
      return `| ${r.label} | ${fmt(w.seconds)} | ${fmt(w.orders)} | ${fmt(w.ordersPerSecond)} | ${fmt(w.cancels)} | ${fmt(w.cancelsPerSecond)} | ${fmt(w.operationsPerSecond)} | ${lat(w.orderLatencyMs)} | ${lat(w.cancelLatencyMs)} |`;
    }),
    '',
    ...runs.map((r) => {
      const { run, database, events } = r.refund!;
      const outcomes = Object.entries(run.cancelOutcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
      return (
        `- ${r.label}, whole run: ${fmt(run.placed)} orders placed, ${fmt(run.cancelsSent)} cancellations sent (${fmt(run.cancelsAfterLoop)} after the loop), answered ${outcomes || 'nothing'}` +
        `${run.badBodies ? `, ${fmt(run.badBodies)} 200 bodies wrong` : ''}; in the database ${fmt(database.cancelled)} of its orders CANCELLED ` +
        `(CANCELLED orders ${fmt(database.cancelledBefore)} → ${fmt(database.cancelledAfter)})` +
        (events ? `; the receiver accepted ${fmt(events.paidAccepted)} of their order.paid and ${fmt(events.cancelledAccepted)} order.cancelled` : '; events not checked at a receiver (--url)')
      );
    }),
    '',
  ];
}
