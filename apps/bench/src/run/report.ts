import type { LockWaits, EventCheck } from './observe.ts';
import { KEYED_TWIN, type KeyedWorkload, type ReplayStats, type Sample, type WorkloadName } from './protocol.ts';
import type { Summary } from './stats.ts';

export interface RunRecord {
  readonly workload: WorkloadName;
  readonly runner: 'service' | 'ceiling' | 'plain-row-lock';
  readonly label: string;
  readonly summary: Summary;
  readonly samples: Sample[];
  salesPerSecond?: number;
  exhaustedP99Ms?: number;
  lockWaits?: LockWaits;
  /** Keyed workloads: the orders sent again with the same key (not counted in orders/s). */
  replays?: ReplayStats;
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

export function targets(report: Report): string[] {
  const find = (w: WorkloadName, r: RunRecord['runner']) => report.runs.find((x) => x.workload === w && x.runner === r);
  const lines: string[] = [];
  const uService = find('uniform', 'service');
  const uCeiling = find('uniform', 'ceiling');
  const u = ratio(uService?.summary.ordersPerSecond, uCeiling?.summary.ordersPerSecond);
  if (u !== null) {
    lines.push(`uniform: service ${fmt(uService!.summary.ordersPerSecond)} orders/s = **${u}×** the same-run ceiling of ${fmt(uCeiling!.summary.ordersPerSecond)} (target ≥ 0.5×) ${u >= 0.5 ? 'met' : '**not met**'}; p99 ${fmt(uService!.summary.latencyMs.p99)} ms`);
  }
  const hService = find('hot-product', 'service');
  const hPlain = find('hot-product', 'plain-row-lock');
  const hCeiling = find('hot-product', 'ceiling');
  const h = ratio(hService?.salesPerSecond, hPlain?.salesPerSecond);
  if (h !== null) {
    lines.push(`hot-product: service sells ${fmt(hService!.salesPerSecond!)}/s = **${h}×** the plain row-lock transaction's ${fmt(hPlain!.salesPerSecond!)}/s (target ≥ 1.5×) ${h >= 1.5 ? 'met' : '**not met**'}; ${ratio(hService!.salesPerSecond, hCeiling?.salesPerSecond) ?? '–'}× the same-SQL ceiling`);
  }
  const burst = find('coupon-burst', 'service');
  if (burst) {
    lines.push(`coupon-burst: COUPON_EXHAUSTED answered with p99 ${fmt(burst.exhaustedP99Ms ?? 0)} ms; sessions waiting on a lock: at most ${burst.lockWaits?.max ?? '?'}, on average ${burst.lockWaits?.mean ?? '?'} (${burst.lockWaits?.samples ?? 0} samples)`);
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

export function markdownReport(report: Report): string {
  const out: string[] = [
    `# Benchmark ${report.startedAt}`,
    '',
    `${report.target}; ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; ` +
      Object.entries(report.options).map(([k, v]) => `${k} ${v}`).join(', '),
    '',
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
    '## Invariants',
    '',
    `Events: ${fmt(report.events.recorded)} recorded, ${fmt(report.events.undelivered)} undelivered` +
      (report.events.received === null ? '' : `, ${fmt(report.events.received)} distinct received, ${report.events.duplicates} repeated deliveries`),
    '',
    report.violations.length === 0
      ? 'All hold: balances = ledgers, every order paid once with one event, coupons never past their total, stock + sold = initial, every event delivered once.'
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
    'Replays: about 10% of the keyed orders answered 201, sent again 5–100 ms later with the same key and body, over the same connections, during the load (warm-up included); ' +
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
