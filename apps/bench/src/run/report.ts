import type { LockWaits, EventCheck } from './observe.ts';
import type { Sample, WorkloadName } from './protocol.ts';
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
}

export interface Report {
  readonly startedAt: string;
  readonly target: string;
  readonly machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  readonly options: Record<string, number>;
  readonly events: EventCheck;
  readonly runs: RunRecord[];
  readonly violations: string[];
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);

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
