import { IDEMPOTENCY_RETENTION_MS } from '@shop/application';
import { EVENT_RETENTION_DAYS } from './history.ts';
import type { RunResult } from './run.ts';
import type { RssSample } from './samples.ts';

/** The limit the issue sets on RSS growth of an instance from the 5th minute to the end. */
export const RSS_GROWTH_LIMIT = 0.2;

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The mean of the samples of a stretch of time: one sample can fall on a trough or a peak of V8's heap sizing. */
export interface RssWindow {
  readonly fromMs: number;
  readonly toMs: number;
  readonly samples: number;
  readonly rssKb: number;
  readonly heapUsedKb: number | null;
  readonly externalKb: number | null;
}

export interface RssSeries {
  readonly slot: string;
  readonly pid: number;
  readonly samples: readonly RssSample[];
  /** From the baseline time (the 5th minute) on, for a sixth of the run; null if the process started after it. */
  readonly baseline: RssWindow | null;
  /** The run's last sixth. */
  readonly end: RssWindow;
  readonly maxKb: number;
  /** end / baseline − 1; null without a baseline. */
  readonly growth: number | null;
}

function window(samples: readonly RssSample[], fromMs: number, toMs: number): RssWindow | null {
  const inside = samples.filter((s) => s.atMs >= fromMs && s.atMs <= toMs);
  if (inside.length === 0) return null;
  const mean = (values: Array<number | null>) => (values.some((v) => v === null) ? null : Math.round(values.reduce<number>((a, v) => a + v!, 0) / values.length));
  return {
    fromMs: inside[0]!.atMs,
    toMs: inside.at(-1)!.atMs,
    samples: inside.length,
    rssKb: mean(inside.map((s) => s.rssKb))!,
    heapUsedKb: mean(inside.map((s) => s.heapUsedKb)),
    externalKb: mean(inside.map((s) => s.externalKb)),
  };
}

/** Each instance's RSS samples, one series per process (a restarted instance starts a new one). */
export function rssSeries(result: RunResult): RssSeries[] {
  const { baselineAtMs, rssWindowMs } = result.timeline;
  const out: RssSeries[] = [];
  for (const [slot, samples] of result.rss) {
    for (const pid of [...new Set(samples.map((s) => s.pid))]) {
      const own = samples.filter((s) => s.pid === pid);
      const lastAt = own.at(-1)!.atMs;
      const baseline = own[0]!.atMs <= baselineAtMs ? window(own, baselineAtMs, baselineAtMs + rssWindowMs) : null;
      const end = window(own, lastAt - rssWindowMs, lastAt)!;
      out.push({ slot, pid, samples: own, baseline, end, maxKb: Math.max(...own.map((s) => s.rssKb)), growth: baseline ? end.rssKb / baseline.rssKb - 1 : null });
    }
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const list = (r: Record<string, number>) => Object.entries(r).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';

/** Lost: answered as done and not in the database, plus recorded events missing from the stream. */
export function lostCount(result: RunResult): number {
  return sum(result.reconciliation.lost) + result.stream.missing;
}

export function judge(result: RunResult): Check[] {
  const { load, stream, reconciliation: r } = result;
  const unexpected = [...load.ledger.unexpected].map(([k, n]) => `${k} ×${n}`).join('; ');
  const notKilled = rssSeries(result).find((s) => s.slot === 'A');
  const faultErrors = result.faults.filter((f) => f.error).map((f) => `${f.plan.kind}: ${f.error}`);
  return [
    {
      name: 'every fault injected as planned',
      ok: result.faults.length === result.timeline.faults.length && faultErrors.length === 0,
      detail: faultErrors.join('; ') || `${result.faults.length} of ${result.timeline.faults.length}`,
    },
    { name: 'no 5xx other than 503, no refusal this load never provokes', ok: load.ledger.unexpected.size === 0, detail: unexpected || 'none' },
    {
      name: 'idempotent replays answered with the first answer',
      ok: load.ledger.replays.failed === 0,
      detail: `${load.ledger.replays.matched} of ${load.ledger.replays.sent} matched; ${load.ledger.replays.failed} failed${load.ledger.replays.examples.length ? `: ${load.ledger.replays.examples.join(' | ')}` : ''}`,
    },
    { name: 'lost: 0 (answered as done, missing from the database or the stream)', ok: lostCount(result) === 0, detail: `${list(r.lost)}; events missing from the stream ${stream.missing}` },
    {
      name: 'nothing done that no client was told of, beyond requests left without an answer',
      ok: sum(r.unexplained) === 0,
      detail: `unexplained: ${list(r.unexplained)}; in doubt: ${list(r.inDoubt)} (of which done: ${list(r.inDoubtDone)})`,
    },
    { name: "orders' status as their last answer said", ok: r.statusMismatches === 0, detail: `${r.statusMismatches} differ` },
    { name: 'every outbox event delivered', ok: result.delivery.undelivered === 0, detail: `${result.delivery.undelivered} undelivered after ${(result.delivery.waitedMs / 1000).toFixed(1)} s` },
    {
      name: 'every event in the stream exactly once, nothing else in it',
      ok: stream.duplicates === 0 && stream.missing === 0 && stream.foreign === 0 && stream.malformed === 0 && stream.distinct === stream.recorded,
      detail: `${stream.recorded} recorded, ${stream.messages} messages, ${stream.distinct} distinct; duplicates ${stream.duplicates}, missing ${stream.missing}, foreign ${stream.foreign}, malformed ${stream.malformed}`,
    },
    { name: "each order's events in the stream in recorded order (paid → refunded… → cancelled)", ok: stream.outOfOrder === 0, detail: `${stream.outOfOrder} orders out of order` },
    { name: 'invariants (stock, balances and ledger, coupons, events per order)', ok: result.audit.length === 0, detail: result.audit.length === 0 ? 'all hold' : result.audit.slice(0, 5).join('; ') },
    {
      name: `RSS growth of the instance not killed (A), from the 5th minute to the end, under ${RSS_GROWTH_LIMIT * 100} %`,
      ok: notKilled?.growth != null && notKilled.growth < RSS_GROWTH_LIMIT,
      detail: notKilled?.growth != null
        ? `${(notKilled.growth * 100).toFixed(1)} % (mean ${notKilled.baseline!.rssKb} kB over ${notKilled.baseline!.samples} samples from ${(notKilled.baseline!.fromMs / 60_000).toFixed(2)} min → mean ${notKilled.end.rssKb} kB over the last ${notKilled.end.samples})`
        : 'no baseline sample',
    },
    ...retentionChecks(result),
    {
      name: 'both instances stop cleanly (SIGTERM, exit 0)',
      ok: Object.values(result.exitCodes).every((c) => c === 0),
      detail: Object.entries(result.exitCodes).map(([k, c]) => `${k}: ${c}`).join(', '),
    },
  ];
}

const DAY_MS = 86_400_000;
const dayOf = (ms: number) => new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);

/**
 * A run across midnight (run.ts, History). Each table must lose at midnight exactly the seeded day
 * that expired then (keys: the day that ended 48 hours before it; delivered events: a day
 * before), which was still whole at the start, so a purge dropping a day early fails as surely as
 * one that drops none; keep every other seeded day whole; hold no day past retention at the end;
 * and end with no more rows than it started with.
 */
export function retentionChecks(result: RunResult): Check[] {
  const h = result.history;
  if (!h) return [];
  const rules = [
    { table: 'idempotency_keys', keepMs: IDEMPOTENCY_RETENTION_MS },
    { table: 'outbox_events', keepMs: EVENT_RETENTION_DAYS * DAY_MS },
  ];
  return rules.map(({ table, keepMs }) => {
    const [start, end] = [h.daysAtStart.filter((d) => d.table === table), h.daysAtEnd.filter((d) => d.table === table)];
    const seeded = h.seeded.filter((d) => d.table === table);
    const expected = dayOf(h.midnight.getTime() - keepMs - DAY_MS);
    const oldestKept = dayOf(h.endAt.getTime() - keepMs);
    const dropped = start.filter((d) => !end.some((e) => e.day === d.day)).map((d) => d.day);
    const wholeAtStart = seeded.filter((d) => start.find((x) => x.day === d.day)?.rows === d.rows).map((d) => d.day);
    const keptWhole = seeded.filter((d) => d.day !== expected)
      .every((d) => end.some((e) => e.day === d.day && e.attached && e.rows >= d.rows));
    const overdue = end.filter((d) => d.day < oldestKept).map((d) => d.day);
    const [rowsStart, rowsEnd] = [result.tables.start.rows[table] ?? 0, result.tables.end.rows[table] ?? 0];
    const rows = (day: string) => (seeded.find((d) => d.day === day)?.rows ?? 0).toLocaleString('en-US');
    return {
      name: `${table}: at midnight the seeded day past retention dropped, and only it; no more rows at the end than at the start`,
      ok: dropped.length === 1 && dropped[0] === expected && wholeAtStart.includes(expected) && keptWhole && overdue.length === 0 && rowsEnd <= rowsStart,
      detail: `dropped during the load: ${dropped.map((d) => `${d} (${rows(d)} seeded rows)`).join(', ') || 'none'} (expected ${expected}, whole at the start: ${wholeAtStart.includes(expected) ? 'yes' : 'no'}); ` +
        `the other seeded days kept whole: ${keptWhole ? 'yes' : 'no'}; days past retention at the end: ${overdue.join(', ') || 'none'}; ` +
        `rows ${rowsStart.toLocaleString('en-US')} → ${rowsEnd.toLocaleString('en-US')}`,
    };
  });
}
