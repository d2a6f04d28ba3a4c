import { spawnSync } from 'node:child_process';
import { judge, lostCount, rssSeries, type Check, type RssWindow } from './checks.ts';
import { outcomeGroup } from './ledger.ts';
import { REPO_ROOT } from './options.ts';
import type { RunResult } from './run.ts';
import { TABLES } from './samples.ts';

const GROUPS = ['2xx', '4xx', '503', '5xx (not 503)', 'refused', 'no answer', 'timeout'] as const;
const min = (ms: number) => `${(ms / 60_000).toFixed(2)}`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const kbToMb = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const n = (x: number) => x.toLocaleString('en-US');
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

const WHAT_IT_DOES = `\`pnpm soak\` runs the service as it is deployed, for a long while, and breaks what it depends on in turn. It starts
an embedded PostgreSQL on a fresh data directory, a nats-server with JetStream as the data platform, and two API processes
sharing them; seeds users, products and a coupon through the admin API; then sends a mixed load to both instances (product
and balance reads, charges, orders with and without an Idempotency-Key, keyed orders sent again, partial refunds and
cancellations of its own orders, coupon issues and orders using the coupon). Meanwhile it crashes the database and starts it
again, takes the platform away for a sixth of the run, restarts NATS, and SIGKILLs one instance and starts it again.
Keyed writes are retried with their key until answered; every answer is recorded. At the end it waits until every event is
delivered, then checks: what the clients were told against the database (nothing answered as done is missing, nothing is
there that no client was told of beyond the requests whose answer never came), the invariants (stock, balances and ledger,
coupons, events per order), every recorded event in the JetStream stream exactly once and each order's in the order
recorded, the RSS of the instances, and the size of the tables that grow. Unless run with \`--midnight none\`, every clock it
starts is shifted so that a UTC midnight falls inside the load, with the days that retention keeps seeded first, so that keys
and delivered events can be seen leaving a whole day at a time (Table sizes). It is not part of CI.`;

export function renderReport(result: RunResult, checks: Check[] = judge(result)): string {
  const ok = checks.every((c) => c.ok);
  const { load } = result;
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim() || 'unknown';
  const args = [`--minutes ${result.options.minutes}`, `--rate ${result.options.rate}`, ...(result.options.midnightMinute === null ? ['--midnight none'] : [])].join(' ');
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  const table = (head: string[], rows: Array<Array<string | number>>) => {
    line(`| ${head.join(' | ')} |`);
    line(`|${head.map(() => '---').join('|')}|`);
    for (const r of rows) line(`| ${r.join(' | ')} |`);
    line();
  };

  line('# Reliability: the soak run');
  line();
  line(WHAT_IT_DOES);
  line();
  table(
    ['', ''],
    [
      ['Command', `\`pnpm soak ${args}\``],
      ['Started', result.history
        ? `${result.startedAt.toISOString()} on the run's shifted clocks (${new Date(result.startedAt.getTime() - result.history.shiftMs).toISOString()} real)`
        : result.startedAt.toISOString()],
      ['Commit', commit],
      ['Load', `${min(result.loadMs)} min at ${result.options.rate} requests/s aimed (${(load.tally.total / (result.loadMs / 1000)).toFixed(1)} answered/s, retries and replays included)`],
      ['Machine', `${result.machine.cpus}, ${result.machine.memory}, ${result.machine.os}; load average ${result.machine.loadStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${result.machine.loadEnd.map((x) => x.toFixed(2)).join(' ')} at the end`],
      ['Software', `Node ${result.versions.node}, PostgreSQL ${result.versions.postgres} (embedded), nats-server ${result.versions.nats}`],
      ['Data', `${result.fixture.users} users, ${result.fixture.products} products, one 10 % coupon of ${result.fixture.couponCopies} copies`],
    ],
  );

  line(`## Result: ${ok ? 'PASS' : 'FAIL'} — lost: ${lostCount(result)}`);
  line();
  table(['Check', 'Holds', 'Detail'], checks.map((c) => [c.name, c.ok ? 'yes' : '**NO**', c.detail.replaceAll('|', '\\|')]));

  line('## Requests');
  line();
  const groups = (counts: Map<string, number> | undefined) => {
    const g = Object.fromEntries(GROUPS.map((k) => [k, 0])) as Record<(typeof GROUPS)[number], number>;
    for (const [outcome, c] of counts ?? []) g[outcomeGroup(outcome)] += c;
    return g;
  };
  const total = new Map<string, number>();
  for (const counts of load.tally.byKind.values()) for (const [o, c] of counts) total.set(o, (total.get(o) ?? 0) + c);
  table(
    ['Request', 'Answers', ...GROUPS, 'Outcomes'],
    [...load.tally.byKind, ['all' as const, total] as const].map(([kind, counts]) => {
      const g = groups(counts);
      const detail = [...counts].sort((a, b) => b[1] - a[1]).map(([o, c]) => `${o} ×${n(c)}`).join(', ');
      return [kind, n([...counts.values()].reduce((a, b) => a + b, 0)), ...GROUPS.map((k) => n(g[k])), detail];
    }),
  );
  const skipped = [...load.tally.skipped.values()].reduce((a, b) => a + b, 0);
  line(`Requests the pace called for but not sent (the client already had 128 in flight): ${n(skipped)}${skipped ? ` (${[...load.tally.skipped].map(([p, c]) => `${p} ${n(c)}`).join(', ')})` : ''}.`);
  line();

  line('## Faults, and what the clients saw');
  line();
  line(`Each fault's answers are those of requests started or ended from its injection until ${(result.timeline.settleMs / 1000).toFixed(0)} s after the thing was back; the rest are "steady".`);
  line();
  const phaseRow = (label: string, at: string, phase: string, facts: string) => {
    const g = groups(load.tally.byPhase.get(phase));
    return [label, at, ...GROUPS.map((k) => n(g[k])), facts.replaceAll('|', '\\|')];
  };
  table(
    ['Fault', 'At (min)', ...GROUPS, 'What happened'],
    [
      ...result.faults.map((f) =>
        phaseRow(f.plan.what, `${min(f.startedAtMs)}–${f.restoredAtMs === null ? '?' : min(f.restoredAtMs)}`, f.plan.kind, [...f.facts, ...(f.error ? [`FAILED: ${f.error}`] : [])].join('; ')),
      ),
      phaseRow('none (steady)', '', 'steady', ''),
    ],
  );

  line('## Orders, money and events');
  line();
  const { ledger } = load;
  const r = result.reconciliation;
  const recordList = (rec: Record<string, number>) => Object.entries(rec).map(([k, v]) => `${k} ${n(v)}`).join(', ');
  table(
    ['', ''],
    [
      ['Orders answered 201', `${n(ledger.orders.size)} (${n(ledger.placed.keyed)} with an Idempotency-Key, ${n(ledger.placed.unkeyed)} without)`],
      ['Keyed orders sent again', `${n(ledger.replays.sent)}: ${n(ledger.replays.matched)} answered with the first answer, marked idempotent-replayed; ${n(ledger.replays.failed)} not`],
      ['Partial refunds answered 201', n(ledger.refunds.size)],
      ['Cancellations answered 200', n(ledger.cancelled.size)],
      ['Charges answered 200', n([...ledger.charges.values()].reduce((a, c) => a + c.confirmed, 0))],
      ['Coupon copies issued', `${n([...ledger.coupons.values()].filter((s) => s === 'held' || s === 'used' || s === 'use-unknown').length)} of ${result.fixture.couponCopies}; ${n(ledger.couponExhaustedAnswers)} told COUPON_EXHAUSTED`],
      ['Lost', `${lostCount(result)} (${recordList(r.lost)}; events missing from the stream ${result.stream.missing})`],
      ['Left without an answer (in doubt)', `${recordList(r.inDoubt)}; the database shows done: ${recordList(r.inDoubtDone)}`],
      ['Done with no client told, beyond those', recordList(r.unexplained)],
      ['Events recorded', `${n(result.stream.recorded)} (${Object.entries(result.stream.byType).map(([t, c]) => `${t} ${n(c)}`).join(', ')})`],
      ['Events in the stream', `${n(result.stream.messages)} messages, ${n(result.stream.distinct)} distinct eventIds, ${n(result.stream.duplicates)} duplicates, ${n(result.stream.missing)} missing, ${n(result.stream.outOfOrder)} orders out of order`],
      ['Delivery after the load', `every event delivered ${(result.delivery.waitedMs / 1000).toFixed(1)} s after the load stopped (${n(result.delivery.undelivered)} left)`],
      ['Invariants', result.audit.length === 0 ? 'all hold' : `${result.audit.length} violations: ${result.audit.slice(0, 5).join('; ')}`],
    ],
  );
  if (r.examples.length || result.stream.examples.length) {
    line('Examples of what did not agree:');
    line();
    for (const e of [...r.examples, ...result.stream.examples]) line(`- ${e}`);
    line();
  }

  line('## Memory (RSS of each API process)');
  line();
  const w = result.timeline.rssWindowMs;
  line(
    `Sampled every ${(result.timeline.sampleEveryMs / 1000).toFixed(0)} s from /proc/<pid>/status (VmRSS), with V8's heap in use from each instance's /metrics. ` +
      `Growth compares the mean RSS over ${min(w)} min from the baseline at ${min(result.timeline.baselineAtMs)} min (the 5th minute, past the warm-up in which V8 ` +
      `sizes its heap; the middle of a run shorter than 10 minutes) with the mean over the last ${min(w)} min: V8 gives memory back and takes it again by tens of ` +
      `MiB over minutes, and a single sample can fall on either. Instance B's series starts again at its restart.`,
  );
  line();
  const series = rssSeries(result);
  const heap = (x: RssWindow | null) => (x?.heapUsedKb == null ? '—' : `${kbToMb(x.heapUsedKb)} + ${kbToMb(x.externalKb ?? 0)}`);
  const span = (x: RssWindow) => `${kbToMb(x.rssKb)} (${min(x.fromMs)}–${min(x.toMs)} min, ${x.samples} samples)`;
  table(
    ['Instance', 'pid', 'Samples', 'First', 'Baseline (mean)', 'End (mean)', 'Max', 'Growth', 'Heap used + external, baseline → end (means)'],
    series.map((s) => [
      s.slot, s.pid, s.samples.length, kbToMb(s.samples[0]!.rssKb), s.baseline ? span(s.baseline) : '— (started after it)', span(s.end), kbToMb(s.maxKb),
      s.growth === null ? '—' : pct(s.growth), `${heap(s.baseline)} → ${heap(s.end)}`,
    ]),
  );
  line('<details><summary>Every sample (min: RSS / V8 heap used, MiB)</summary>');
  line();
  for (const s of series) {
    line(`- ${s.slot} (pid ${s.pid}): ${s.samples.map((x) => `${min(x.atMs)}: ${(x.rssKb / 1024).toFixed(0)} / ${x.heapUsedKb === null ? '?' : (x.heapUsedKb / 1024).toFixed(0)}`).join(', ')}`);
  }
  line();
  line('</details>');
  line();

  line('## Table sizes');
  line();
  const { start, end } = result.tables;
  table(
    ['Table', 'Start', 'End', 'Rows at start', 'Rows at end', 'Bytes per row at end'],
    TABLES.map((t) => [t, mb(start.bytes[t]!), mb(end.bytes[t]!), n(start.rows[t]!), n(end.rows[t]!), end.rows[t] ? n(Math.round(end.bytes[t]! / end.rows[t]!)) : '—']),
  );
  const h = result.history;
  if (!h) {
    line(
      `Retention is longer than the run, so these tables cannot be seen flat after it here: idempotency keys are kept 48 hours (a constant of ` +
        `the service) and delivered outbox records at least a day (OUTBOX_RETENTION_DAYS, at its minimum of 1 in this run). Both grow with the ` +
        `load for the whole run, by the bytes per row above. What the run does show is that both purges run on every instance (at its start, ` +
        `then every 5 minutes after a pass that cleared everything) and find nothing past retention:`,
    );
  } else {
    const seededRows = h.seeded.reduce((a, d) => a + d.rows, 0);
    line(
      `Keys are kept 48 hours (a constant of the service) and delivered events a day (OUTBOX_RETENTION_DAYS=1), and both leave a whole UTC day ` +
        `at a time, so a run at an arbitrary hour would see them only grow. This run's clocks (the soak's, PostgreSQL's and the instances') were ` +
        `shifted forward by ${(h.shiftMs / 3_600_000).toFixed(2)} hours (libfaketime; the monotonic clock, which timers use, left alone), so that ` +
        `UTC midnight (${h.midnight.toISOString()}) fell at minute ${min(h.midnightAtMs)} of the load. Before the load, the days a service running ` +
        `without pause at this rate would still hold were seeded straight into their partitions: ${n(seededRows)} rows in ${(h.seedMs / 1000).toFixed(0)} s ` +
        `(keys at 0.27 and delivered events at 0.37 per request aimed, the rates of the 2026-12-06 run). So the start is where a long-running ` +
        `service stands, and the midnight is when one more day of each becomes droppable. Each day partition, at the start and the end of the load:`,
    );
    line();
    const days = [...new Set([...h.daysAtStart, ...h.daysAtEnd].map((d) => `${d.table} ${d.day}`))].sort();
    table(
      ['Table', 'Day (UTC)', 'Seeded rows', 'Rows at start', 'Rows at end', 'Size at end'],
      days.map((k) => {
        const [t, day] = k.split(' ') as [string, string];
        const at = (list: typeof h.daysAtStart) => list.find((d) => d.table === t && d.day === day);
        const [s0, s1, seeded] = [at(h.daysAtStart), at(h.daysAtEnd), h.seeded.find((d) => d.table === t && d.day === day)];
        return [t, day, seeded ? n(seeded.rows) : '—', s0 ? n(s0.rows) : '—', s1 ? `${n(s1.rows)}${s1.attached ? '' : ' (detached)'}` : 'dropped', s1 ? mb(s1.bytes) : '—'];
      }),
    );
    const series = result.tables.series.map((x) => `${min(x.atMs)}: ${mb(x.bytes.idempotency_keys ?? 0)} / ${mb(x.bytes.outbox_events ?? 0)}`);
    line(`Sizes through the run (min: idempotency_keys / outbox_events): ${series.join(', ')}.`);
    line();
    line(`The seeded events belong to no order, so the ${n(h.removedEvents)} still there at the end were taken out before the checks above, which are about the run's own rows. Both purges on every instance:`);
  }
  line();
  const purgeRows: Array<Array<string | number>> = [];
  for (const [slot, figures] of result.metrics) {
    if (typeof figures === 'string') {
      purgeRows.push([slot, `metrics unavailable: ${figures}`, '', '', '']);
      continue;
    }
    for (const purge of ['idempotency_keys', 'outbox_delivered']) {
      const get = (name: string, labels: string) => figures.get(`${name}{${labels}}`) ?? 0;
      purgeRows.push([
        slot, purge, ['done', 'more', 'failed'].map((o) => `${o} ${get('purge_passes_total', `purge="${purge}",outcome="${o}"`)}`).join(', '),
        get('purge_rows_total', `purge="${purge}"`), get('purge_backlog_rows', `purge="${purge}"`),
      ]);
    }
  }
  table(['Instance', 'Purge', 'Passes (this process)', 'Rows deleted', 'Backlog after its last pass'], purgeRows);
  line("Instance B's figures are those of its process after the restart.");
  line();

  line('## Settings');
  line();
  line(`The instances ran with these settings beyond the defaults: ${Object.entries(result.settings).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`);
  line('The retry cap and the lease are shortened so that an outage\'s backlog and a killed instance\'s claimed records are delivered within seconds of the fault\'s end.');
  line();
  line(`Error-level log lines (expected around the faults): ${Object.entries(result.errorLines).map(([k, e]) => `${k} ${e.count}`).join(', ')}.`);
  const examples = Object.entries(result.errorLines).flatMap(([k, e]) => e.examples.slice(0, 2).map((x) => `${k}: ${x}`));
  if (examples.length) {
    line();
    line('<details><summary>First error lines</summary>');
    line();
    for (const e of examples) line(`- \`${e.replaceAll('`', "'")}\``);
    line();
    line('</details>');
  }
  line();
  return out.join('\n');
}
