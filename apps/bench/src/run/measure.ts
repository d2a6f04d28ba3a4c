import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { backendPid, recordedEvents, resetStatements, topStatements, type StatementStats } from '@shop/adapters-postgres/bench';
import { MS_PER_TICK, postmasterOf, processTicks, treeTicks } from '@shop/local-clusters';
import { receivedOnce } from '@shop/local-clusters/bench';
import type { Receiver } from '../../../../test/support/receiver.ts';
import { section, table } from './report.ts';
export { processTicks } from '@shop/local-clusters'; // the load process's CPU (driver.ts, pgbench.ts)

// What a measured window cost each process, utime + stime (/proc) at its edges: the service; PostgreSQL's postmaster and every process under it
// (ended backends through its cutime); the load generator. And pg_stat_statements, reset as it opens and read as it closes.

export type Meter = Awaited<ReturnType<typeof createMeter>>;
export type MeasuredWindow = ReturnType<Meter['window']>;
export type CpuWindow = NonNullable<Awaited<ReturnType<MeasuredWindow['result']>>['cpu']>;

export async function createMeter(pool: pg.Pool, servicePid: () => number | null /* a workload may start it again */, statements: boolean) {
  const postmasterPid = postmasterOf(await backendPid(pool)); // the parent of one of the pool's backends
  const sample = (loadTicks: () => number | null) => {
    const cluster = treeTicks(postmasterPid);
    const [service, load] = [processTicks(servicePid()), loadTicks()];
    return { ms: performance.now(), service, postgres: cluster?.ticks ?? null, load, processes: cluster?.processes ?? 0 };
  };
  return {
    postmasterPid,
    /** One measured window: mark() samples at the instant it is called, the first time as it opens, the second as it closes (later: nothing). */
    window(loadTicks: () => number | null) {
      const edges: Array<ReturnType<typeof sample>> = [];
      let [chain, stats] = [Promise.resolve() as Promise<unknown>, null as StatementStats | null];
      return {
        mark() {
          if (edges.length === 2) return;
          const opening = edges.push(sample(loadTicks)) === 1;
          if (statements) chain = chain.then(async () => (opening ? resetStatements(pool) : (stats = await topStatements(pool))));
        },
        async result() {
          await chain;
          const [a, b] = edges;
          const delta = (k: 'service' | 'postgres' | 'load') => (a?.[k] == null || b?.[k] == null ? null : Math.max(0, (b[k] - a[k]) * MS_PER_TICK));
          // postgresProcesses: the postmaster and the processes under it, at the window's end.
          const cpu = a && b ? { wallMs: b.ms - a.ms, serviceMs: delta('service'), postgresMs: delta('postgres'), loadMs: delta('load'),
            postgresProcesses: b.processes } : null;
          return { cpu, statements: stats };
        },
      };
    },
  };
}

export type EventCheck = Awaited<ReturnType<typeof checkEvents>>;
/** Every recorded event reached the platform once, nothing arrived unrecorded; but for a --scale seed's, delivered before `seededBefore`. */
export async function checkEvents(pool: pg.Pool, receiver: Receiver | null, seededBefore: Date | null) {
  const rows = await recordedEvents(pool, seededBefore);
  const undelivered = rows.filter((r) => !r.delivered).length;
  const r = receiver && receivedOnce(rows.map((e) => e.event_id), receiver.accepted.map((e) => e.body.eventId as string));
  const violations = [
    undelivered > 0 && `events: ${undelivered} recorded events were never delivered`,
    r?.missing && `events: ${r.missing} recorded events never reached the receiver`,
    r?.invented && `events: ${r.invented} events reached the receiver that were never recorded`,
    r?.duplicates && `events: ${r.duplicates} deliveries repeated an eventId (no process crashed, so none is expected)`,
  ].filter((v) => typeof v === 'string');
  return { recorded: rows.length, undelivered, received: r?.distinct ?? null, duplicates: r?.duplicates ?? null, violations };
}

/** --cpu-prof: the service's hottest functions by self time, as a share of its busy (non-idle) samples: the report's section. */
export function summariseCpuProfiles(dir: string, top = 20): string[] {
  type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
  const self = new Map<string, number>();
  let busy = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    for (const node of (JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { nodes: Node[] }).nodes) {
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') continue; // waiting for I/O: not the service's cost
      busy += node.hitCount ?? 0;
      const where = url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/work\/[^/]+\//, '');
      const key = `${functionName || '(anonymous)'} · ${where || '(native)'}${where ? `:${lineNumber + 1}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + (node.hitCount ?? 0));
    }
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return ['', ...section('Service CPU profile (self time, share of busy samples)', table(rows, [
    ['share', ([, hits]) => `${((hits / Math.max(1, busy)) * 100).toFixed(1)}%`],
    ['function · file:line', ([key]) => `\`${key.replace(/\|/g, '\\|')}\``, 'left'],
  ]))];
}
