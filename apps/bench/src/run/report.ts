import type { CpuWindow, StatementStats } from './meter.ts';
import type { EventCheck, LockWaits } from './observe.ts';
import type { ReplayStats, Sample, WorkloadName } from './protocol.ts';
import type { RefundReport } from './refund.ts';
import type { Summary } from './stats.ts';

/**
 * Who ran the orders: the service over HTTP; pgbench with the textbook transaction (the database's
 * own limit); or from one Node process, no HTTP, the service's own SQL ('ceiling', the ceiling
 * before pgbench) or the plain row-lock transaction.
 */
export type Runner = 'service' | 'pgbench' | 'ceiling' | 'plain-row-lock';
export const RUNNER_NAMES: Record<Runner, string> = {
  service: 'service (HTTP)',
  pgbench: 'pgbench, textbook transaction',
  ceiling: 'same SQL through one Node process',
  'plain-row-lock': 'plain row lock through one Node process',
};

export interface RunRecord {
  readonly workload: WorkloadName;
  readonly runner: Runner;
  readonly label: string;
  readonly summary: Summary;
  readonly samples: Sample[];
  /** The CPU of the measured window and what it is divided by: orders (hot: units sold; refund: operations) or requests. */
  cost?: { cpu: CpuWindow; orders: number; requests: number; unit?: 'operation' };
  /** pg_stat_statements over the window; null when the server does not load it. */
  statements?: StatementStats | null;
  pgbench?: { tps: number; transactions: number; command: string; summary: string[] };
  salesPerSecond?: number;
  exhaustedP99Ms?: number;
  lockWaits?: LockWaits;
  replays?: ReplayStats;
  refund?: RefundReport;
}

export interface Report {
  readonly startedAt: string;
  readonly target: string;
  /** pgbench's version, or null when it is not on PATH (the Node runners are the ceilings then). */
  readonly pgbench: { readonly version: string | null; readonly threads: number };
  readonly statements: boolean;
  readonly machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  readonly options: Record<string, number>;
  readonly events: EventCheck;
  readonly runs: RunRecord[];
  readonly keyedVsUnkeyed: ReturnType<typeof keyedVsUnkeyed>;
  readonly violations: string[];
}

/** Keyed twins and the workload whose service run and ceilings each is set against. */
export const TWIN: Partial<Record<WorkloadName, WorkloadName>> = { 'uniform-keyed': 'uniform', 'hot-product-keyed': 'hot-product', 'slow-platform': 'uniform' };
const KEYED = ['uniform-keyed', 'hot-product-keyed'] as const;
const baseOf = (w: WorkloadName) => TWIN[w] ?? w;
const isHot = (w: WorkloadName) => baseOf(w) === 'hot-product';

export const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const find = (runs: readonly RunRecord[], w: WorkloadName, r: Runner) => runs.find((x) => x.workload === w && x.runner === r);
/** A workload's figure against its ceilings: orders/s, or for the hot product sales/s. */
const figure = (r: RunRecord | undefined) => (r ? (isHot(r.workload) ? r.salesPerSecond : r.summary.ordersPerSecond) : undefined);

/** Each keyed workload's service run against its unkeyed twin's, same run. */
export function keyedVsUnkeyed(runs: readonly RunRecord[]) {
  return KEYED.flatMap((workload) => {
    const twin = baseOf(workload);
    const [k, u] = [find(runs, workload, 'service'), find(runs, twin, 'service')];
    if (!k || !u) return [];
    const pair = (unkeyed: number, keyed: number) => ({ unkeyed, keyed, ratio: ratio(keyed, unkeyed) });
    const sales = u.salesPerSecond !== undefined && k.salesPerSecond !== undefined ? { salesPerSecond: pair(u.salesPerSecond, k.salesPerSecond) } : {};
    const replays = k.replays ? { sent: k.replays.sent, matched: k.replays.matched, mismatched: k.replays.mismatched, p99Ms: k.replays.latencyMs.p99 } : null;
    return [{ workload, twin, ordersPerSecond: pair(u.summary.ordersPerSecond, k.summary.ordersPerSecond), p99Ms: pair(u.summary.latencyMs.p99, k.summary.latencyMs.p99), ...sales, replays }];
  });
}

/**
 * The ceiling a workload is measured against: pgbench's run of its base workload, or without
 * pgbench the Node runner (same SQL for uniform, plain row lock for the hot product), so labelled.
 */
function ceilingOf(report: Report, workload: WorkloadName): { run: RunRecord; name: string; fallback: boolean } | null {
  const base = baseOf(workload);
  const p = find(report.runs, base, 'pgbench');
  if (p) return { run: p, name: 'pgbench', fallback: false };
  const f = find(report.runs, base, base === 'hot-product' ? 'plain-row-lock' : 'ceiling');
  return f && (base === 'hot-product' || base === 'uniform') ? { run: f, name: `${RUNNER_NAMES[f.runner]} (fallback: pgbench not installed)`, fallback: true } : null;
}

/** The Targets lines: each workload against its ceilings, then what `extraTargets` says of the others. */
function targets(report: Report, extraTargets: string[]): string[] {
  const runs = report.runs;
  const lines: string[] = [];
  for (const w of ['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed'] as const) {
    const [s, c] = [find(runs, w, 'service'), ceilingOf(report, w)];
    if (!s || !c) continue;
    const unit = isHot(w) ? 'sales/s' : 'orders/s';
    const tps = c.run.pgbench ? ` (${fmt(c.run.pgbench.tps)} transactions/s)` : '';
    const others = (isHot(w) ? (['ceiling', 'plain-row-lock'] as const) : (['ceiling'] as const))
      .filter((k) => k !== c.run.runner)
      .flatMap((k) => find(runs, baseOf(w), k) ?? [])
      .map((x) => `${ratio(figure(s), figure(x)) ?? '–'}× the ${RUNNER_NAMES[x.runner]}'s ${fmt(figure(x) ?? 0)}`);
    const limit = c.fallback ? c.name : "database's own limit (pgbench, textbook transaction, same server, same run)";
    lines.push(
      `${w}: service ${fmt(figure(s) ?? 0)} ${unit} = **${ratio(figure(s), figure(c.run)) ?? '–'}×** the ${limit}: ${fmt(figure(c.run) ?? 0)} ${unit}${tps}` +
        `${others.length ? `; ${others.join('; ')}` : ''}; p99 ${fmt(s.summary.latencyMs.p99)} ms`,
    );
  }
  // The issue-5 targets, against the Node runners they were set against.
  const u = ratio(find(runs, 'uniform', 'service')?.summary.ordersPerSecond, find(runs, 'uniform', 'ceiling')?.summary.ordersPerSecond);
  if (u !== null) lines.push(`issue-5 target, uniform ≥ 0.5× the same SQL through one Node process: ${u}× ${u >= 0.5 ? 'met' : '**not met**'}`);
  const h = ratio(find(runs, 'hot-product', 'service')?.salesPerSecond, find(runs, 'hot-product', 'plain-row-lock')?.salesPerSecond);
  if (h !== null) lines.push(`issue-5 target, hot-product ≥ 1.5× the plain row lock through one Node process: ${h}× ${h >= 1.5 ? 'met' : '**not met**'}`);
  lines.push(...extraTargets);
  for (const c of report.keyedVsUnkeyed) {
    const replays = c.replays ? `; replays ${fmt(c.replays.sent)} sent, ${fmt(c.replays.matched)} matched, ${fmt(c.replays.mismatched)} mismatched` : '';
    lines.push(
      `${c.workload} (every order with its own Idempotency-Key): ${fmt(c.ordersPerSecond.keyed)} orders/s = **${c.ordersPerSecond.ratio ?? '–'}×** ${c.twin}'s ${fmt(c.ordersPerSecond.unkeyed)}; ` +
        `p99 ${fmt(c.p99Ms.keyed)} ms = ${c.p99Ms.ratio ?? '–'}× its ${fmt(c.p99Ms.unkeyed)} ms${replays}`,
    );
  }
  return lines;
}

/** CPU milliseconds per successful order (per operation for refund, per request for a run without orders). */
function perOrder(run: RunRecord) {
  const c = run.cost;
  const n = c ? (c.orders > 0 ? c.orders : c.requests) : 0;
  if (!c || n === 0) return null;
  const each = (ms: number | null) => (ms === null ? null : ms / n);
  const parts = [c.cpu.serviceMs, c.cpu.postgresMs, c.cpu.loadMs];
  const total = parts.some((p) => p !== null) ? each(parts.reduce<number>((a, b) => a + (b ?? 0), 0)) : null;
  return { service: each(c.cpu.serviceMs), postgres: each(c.cpu.postgresMs), load: each(c.cpu.loadMs), total };
}

const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v >= 10 ? v.toFixed(1) : v.toFixed(3));
const cells = (xs: Array<string | number>) => `| ${xs.join(' | ')} |`;

/** The table the report opens with: what one order costs each process. */
function cpuSection(report: Report): string[] {
  const rows = report.runs.filter((r) => r.cost);
  if (rows.length === 0) return [];
  return [
    '## CPU ms per order',
    '',
    "CPU time (utime + stime from /proc/<pid>/stat) spent in each run's measured window ÷ the successful orders completed in it " +
      '(hot product: units sold; refund: orders + cancellations, "ops"; a run without orders: per request). **service**: the apps/api process; **PostgreSQL**: this cluster\'s ' +
      "postmaster and every process under it (backends, background workers; ended backends through the postmaster's cutime); " +
      '**load generator**: the HTTP load process, the Node ceiling process (load and the order code in one), or pgbench. ' +
      "Under pgbench the service column is its outbox relay delivering pgbench's events. " +
      "**PostgreSQL ÷ ceiling**: this run's PostgreSQL ms per order ÷ that of its ceiling run (pgbench when installed).",
    '',
    '| run | window s | orders | service | PostgreSQL | load generator | total | PostgreSQL ÷ ceiling |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const [p, c] = [perOrder(r), r.cost!];
      const ceiling = ceilingOf(report, r.workload);
      const cp = ceiling ? perOrder(ceiling.run) : null;
      const rel = r.runner === 'pgbench' ? '1×' : p?.postgres != null && cp?.postgres ? `${(p.postgres / cp.postgres).toFixed(2)}×` : '';
      const n = c.orders > 0 ? `${fmt(c.orders)}${c.unit ? ' ops' : ''}` : `${fmt(c.requests)} requests`;
      return cells([r.label, (c.cpu.wallMs / 1000).toFixed(2), n, ms(p?.service), ms(p?.postgres), ms(p?.load), ms(p?.total), rel]);
    }),
    '',
  ];
}

/** Each workload against its ceilings, the figure that matters: orders/s, or sales/s for the hot product. */
function ceilingSection(report: Report): string[] {
  const rows = (['uniform', 'uniform-keyed', 'hot-product', 'hot-product-keyed'] as const).flatMap((w) => {
    const s = find(report.runs, w, 'service');
    if (!s) return [];
    const [p, n, l] = (['pgbench', 'ceiling', 'plain-row-lock'] as const).map((r) => find(report.runs, baseOf(w), r));
    const cell = (x: RunRecord | undefined) => (x ? `${fmt(figure(x) ?? 0)} | ${ratio(figure(s), figure(x)) ?? '–'}×` : ' | ');
    const pg = p ? cell(p) : report.pgbench.version ? ' | ' : 'not installed | ';
    return [`| ${w} (${isHot(w) ? 'sales/s' : 'orders/s'}) | ${fmt(figure(s) ?? 0)} | ${pg} | ${cell(n)} | ${isHot(w) ? cell(l) : ' | '} |`];
  });
  if (rows.length === 0) return [];
  const pgbenchLine = (r: RunRecord) => {
    const [c, p] = [r.cost?.cpu, r.pgbench!];
    const perTx = (v: number | null | undefined) => (v == null || !p.transactions ? 'n/a' : ms(v / p.transactions));
    const cpu = c ? `; CPU per transaction: PostgreSQL ${perTx(c.postgresMs)} ms, pgbench ${perTx(c.loadMs)} ms` : '';
    return `- ${r.label}: ${fmt(p.transactions)} transactions in the window, ${fmt(p.tps)}/s${cpu}; \`${p.command}\``;
  };
  return [
    "## Against the database's own limit",
    '',
    (report.pgbench.version
      ? `The ceiling is ${report.pgbench.version}, \`-M prepared\`, as many clients as the load has connections, ${report.pgbench.threads} threads, `
      : '**pgbench is not installed here (not on PATH): the headline ratios fall back to the Node runners, labelled so.** With it, the ceiling is pgbench ') +
      'running the textbook order transaction on the same server in the same run, on users and products of its own (BEGIN; each product row locked with SELECT … FOR UPDATE, in id order; ' +
      'one UPDATE per item; the balance updated; order, items, ledger entry and event inserted; COMMIT; for the hot product, the plain row-lock transaction: the hot row locked first). ' +
      "The second column is the ceiling used until now: the service's own order code and SQL called from one Node process, no HTTP. Keyed twins are set against their unkeyed workload's ceilings.",
    '',
    '| workload | service | pgbench | service ÷ pgbench | same SQL through one Node process | service ÷ it | plain row lock through one Node process | service ÷ it |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    ...report.runs.filter((r) => r.pgbench).map(pgbenchLine),
    '',
  ];
}

/** pg_stat_statements over one run's window: where the database's time went (also printed as each run ends). */
export function statementTable(r: RunRecord): string[] {
  const st = r.statements;
  if (!st) return [];
  const n = r.cost?.orders || r.cost?.requests || 0;
  const per = (v: number) => (n > 0 ? (v / n).toFixed(3) : '');
  const query = (q: string) => (q.length > 160 ? `${q.slice(0, 157)}…` : q).replace(/\|/g, '\\|').replace(/`/g, "'");
  return [
    `### ${r.label}`,
    '',
    `Top-level execution time ${fmt(Math.round(st.toplevelMs))} ms in ${fmt(st.toplevelCalls)} calls = ${per(st.toplevelMs)} ms per ${r.cost?.orders ? (r.cost.unit ?? 'order') : 'request'}.`,
    '',
    `| statement | top level | calls | total ms | ms per ${r.cost?.unit ?? 'order'} | rows per call |`,
    '|---|---|---:|---:|---:|---:|',
    ...st.top.map((t) => cells([`\`${query(t.query)}\``, t.toplevel ? 'yes' : 'no', fmt(t.calls), fmt(Math.round(t.totalMs)), per(t.totalMs), t.calls ? (t.rows / t.calls).toFixed(2) : ''])),
    '',
  ];
}

function statementSection(report: Report): string[] {
  if (!report.statements) return ['## Statements', '', 'pg_stat_statements is not loaded on this server.', ''];
  return [
    "## Statements (pg_stat_statements, each run's window)",
    '',
    "Reset as each window opened, read as it closed; `track = all`, so statements inside write_order_group appear beside the call that ran them (not top level), and their time is also in that call's.",
    '',
    ...report.runs.flatMap(statementTable),
  ];
}

/** keyed ÷ unkeyed, and the keyed runs' replays; empty when no keyed workload ran. */
function keyedSection(report: Report): string[] {
  const keyedRuns = report.runs.filter((r) => r.replays);
  if (keyedRuns.length === 0) return [];
  const x = (r: number | null) => `${r ?? '–'}×`;
  const comparison = report.keyedVsUnkeyed.length === 0 ? [] : [
    "Each keyed workload is its twin's load with an `Idempotency-Key` on every order (the service run, same run, same requests).",
    '',
    '| workload | orders/s unkeyed | orders/s keyed | keyed ÷ unkeyed | p99 ms unkeyed | p99 ms keyed | keyed ÷ unkeyed | sales/s keyed ÷ unkeyed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...report.keyedVsUnkeyed.map((c) => {
      const [o, p] = [c.ordersPerSecond, c.p99Ms];
      return cells([c.twin, fmt(o.unkeyed), fmt(o.keyed), `**${x(o.ratio)}**`, fmt(p.unkeyed), fmt(p.keyed), `**${x(p.ratio)}**`, c.salesPerSecond ? x(c.salesPerSecond.ratio) : '']);
    }),
    '',
  ];
  return [
    '## Keyed ÷ unkeyed',
    '',
    ...comparison,
    `Replays: about ${Math.round((report.options.replayShare ?? 0.1) * 100)}% of the keyed orders answered 201, sent again 5–100 ms later with the same key and body, over the same connections, during the load (warm-up included); ` +
      'each must answer 201, `idempotent-replayed: true` and the first body. They are not counted as orders.',
    '',
    '| run | replays sent | matched | byte-identical | mismatched | replay p50 ms | replay p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...keyedRuns.map(({ label, replays: p }) => cells([label, ...[p!.sent, p!.matched, p!.byteIdentical, p!.mismatched, p!.latencyMs.p50, p!.latencyMs.p99].map(fmt)])),
    '',
  ];
}

/** refund: orders and cancellations racing, each kind on its own; empty when it did not run. */
function refundSection(report: Report): string[] {
  const runs = report.runs.filter((r) => r.refund);
  if (runs.length === 0) return [];
  const lat = (l: { p50: number; p95: number; p99: number; max: number }) => `${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)} / ${fmt(l.max)}`;
  const whole = (r: RunRecord) => {
    const { run, database, events } = r.refund!;
    const outcomes = Object.entries(run.cancelOutcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
    return (
      `- ${r.label}, whole run: ${fmt(run.placed)} orders placed, ${fmt(run.cancelsSent)} cancellations sent (${fmt(run.cancelsAfterLoop)} after the loop), answered ${outcomes || 'nothing'}` +
      `${run.badBodies ? `, ${fmt(run.badBodies)} 200 bodies wrong` : ''}; in the database ${fmt(database.cancelled)} of its orders CANCELLED ` +
      `(CANCELLED orders ${fmt(database.cancelledBefore)} → ${fmt(database.cancelledAfter)})` +
      (events ? `; the receiver accepted ${fmt(events.paidAccepted)} of their order.paid and ${fmt(events.cancelledAccepted)} order.cancelled` : '; events not checked at a receiver (--url)')
    );
  };
  return [
    '## Refund: orders and cancellations racing',
    '',
    'Uniform orders (three random products, one unit each); every second order answered 201 is cancelled by its owner as the next request of a free connection, ' +
      "so cancellations (stock back, refund, `order.cancelled`) race new orders on the same rows. Rates and latencies are the measured window's; " +
      'the cancellations of orders answered as the loop ended are sent after it, counted in the totals, not in the rates.',
    '',
    '| run | s | orders | orders/s | cancellations | cancellations/s | ops/s | order p50 / p95 / p99 / max ms | cancellation p50 / p95 / p99 / max ms |',
    '|---|---:|---:|---:|---:|---:|---:|---|---|',
    ...runs.map(({ label, refund }) => {
      const w = refund!.window;
      return cells([label, ...[w.seconds, w.orders, w.ordersPerSecond, w.cancels, w.cancelsPerSecond, w.operationsPerSecond].map(fmt), lat(w.orderLatencyMs), lat(w.cancelLatencyMs)]);
    }),
    '',
    ...runs.map(whole),
    '',
  ];
}

export function markdownReport(report: Report, extraTargets: string[]): string {
  const { machine: m, events: e } = report;
  const outcomes = (s: Summary) => Object.entries(s.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
  const held = report.runs.some((r) => r.refund)
    ? "; refund: every 200 cancellation's order CANCELLED and refunded once, as many CANCELLED orders as 200 answers, no cancellation answered 5xx, each order.cancelled accepted after its order.paid."
    : '.';
  return [
    `# Benchmark ${report.startedAt}`,
    '',
    `${report.target}; ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}; ${Object.entries(report.options).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    ...cpuSection(report),
    ...ceilingSection(report),
    '## Targets',
    '',
    ...targets(report, extraTargets).map((l) => `- ${l}`),
    '',
    '## Runs',
    '',
    '| run | requests | req/s | orders/s | sales/s | p50 ms | p95 ms | p99 ms | max ms | outcomes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...report.runs.map(({ label, summary: s, salesPerSecond: sales }) => {
      const l = s.latencyMs;
      return cells([label, ...[s.requests, s.requestsPerSecond, s.ordersPerSecond].map(fmt), sales === undefined ? '' : fmt(sales), ...[l.p50, l.p95, l.p99, l.max].map(fmt), outcomes(s)]);
    }),
    '',
    ...keyedSection(report),
    ...refundSection(report),
    ...statementSection(report),
    '## Invariants',
    '',
    `Events: ${fmt(e.recorded)} recorded, ${fmt(e.undelivered)} undelivered` + (e.received === null ? '' : `, ${fmt(e.received)} distinct received, ${e.duplicates} repeated deliveries`),
    '',
    report.violations.length === 0
      ? `All hold: balances = ledgers, every order paid once with one event (a cancelled one refunded once with a second event), coupons never past their total, stock + sold = initial, every event delivered once${held}`
      : ['**VIOLATED:**', ...report.violations.map((v) => `- ${v}`)].join('\n'),
  ].join('\n');
}
