import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { backendPid, recordedEvents, resetStatements, topStatements, type StatementStats } from '@shop/adapters-postgres/bench';
import { MS_PER_TICK, postmasterOf, processSysTicks, processTicks, treeTicks } from '@shop/local-clusters';
import { receivedOnce } from '@shop/local-clusters/bench';
import type { Receiver } from '../../../../test/support/receiver.ts';
import { comparisonMarkdown, monotonicUs, summariseProfiles, summaryMarkdown, type CpuProfile, type PerUnit, type ProfileSummary } from '@shop/cpu-profile';
import { section } from './report.ts';
import type { Edge } from './child.ts';
export { processTicks } from '@shop/local-clusters'; // the load process's CPU (driver.ts, pgbench.ts)
// What a measured window cost each process, utime + stime (/proc) at its edges: the service; PostgreSQL's postmaster and every process under it
// (ended backends through its cutime); the load generator. And pg_stat_statements, reset as it opens and read as it closes.

export type Meter = Awaited<ReturnType<typeof createMeter>>;
export type MeasuredWindow = ReturnType<Meter['window']>;
type Window = { fromUs: number; toUs: number; label: string };
export type CpuWindow = NonNullable<Awaited<ReturnType<MeasuredWindow['result']>>['cpu']>;

export async function createMeter(pool: pg.Pool, servicePid: () => number | null /* a workload may start it again */, statements: boolean, topN = 8) {
  const postmasterPid = postmasterOf(await backendPid(pool)); // the parent of one of the pool's backends
  const sample = (loadTicks: () => number | null) => {
    const [cluster, pid, load] = [treeTicks(postmasterPid), servicePid(), loadTicks()];
    // serviceSys: the kernel's part of the service's CPU (stime), which V8's profile cannot tell from time preempted in a syscall.
    return { ms: performance.now(), us: monotonicUs(), service: processTicks(pid), serviceSys: processSysTicks(pid), postgres: cluster?.ticks ?? null, load, processes: cluster?.processes ?? 0 };
  };
  return {
    postmasterPid,
    /**
     * One measured window: mark() samples at the instant it is called, the first time as it opens, then at each phase edge ('phase', an
     * interleaved window's), and as it closes ('end', or a second plain mark; later: nothing). Statements cover the whole window.
     */
    window(loadTicks: () => number | null) {
      const edges: Array<ReturnType<typeof sample>> = [];
      let [chain, stats, closed] = [Promise.resolve() as Promise<unknown>, null as StatementStats | null, false];
      return {
        mark(edge?: Edge) {
          if (closed || (edge === 'phase' && edges.length === 0)) return;
          const opening = edges.push(sample(loadTicks)) === 1;
          closed = !opening && edge !== 'phase';
          if (statements && (opening || closed)) chain = chain.then(async () => (opening ? resetStatements(pool) : (stats = await topStatements(pool, topN))));
        },
        async result() {
          await chain;
          const delta = (a: (typeof edges)[number] | undefined, b: (typeof edges)[number] | undefined, k: 'service' | 'serviceSys' | 'postgres' | 'load') =>
            (a?.[k] == null || b?.[k] == null ? null : Math.max(0, (b[k] - a[k]) * MS_PER_TICK));
          const span = (a: (typeof edges)[number] | undefined, b: (typeof edges)[number] | undefined) => (a && b ? {
            wallMs: b.ms - a.ms, fromUs: a.us, toUs: b.us, serviceMs: delta(a, b, 'service'), serviceSysMs: delta(a, b, 'serviceSys'),
            postgresMs: delta(a, b, 'postgres'), loadMs: delta(a, b, 'load'), postgresProcesses: b.processes } : null);
          // postgresProcesses: the postmaster and the processes under it, at the window's end.
          // fromUs, toUs: the window on the monotonic clock, as the service's CPU profile stamps its samples.
          const cpu = closed ? span(edges[0], edges.at(-1)) : null;
          // An interleaved window's phases, edge to edge (none for a plain window).
          const phases = closed && edges.length > 2 ? edges.slice(1).map((b, i) => span(edges[i], b)!) : [];
          return { cpu, statements: stats, phases };
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

/** The service's profiles, written as it exited (--cpu-prof). */
export function readCpuProfiles(dir: string): CpuProfile[] {
  return readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile);
}

/** --cpu-prof: where the service's busy samples went (self time by package and by function), inside a workload's windows when given. */
export function summariseCpuProfiles(profiles: readonly CpuProfile[], windows?: readonly Window[]): { summary: ProfileSummary; markdown: string[] } {
  const summary = summariseProfiles(profiles, windows);
  const label = windows?.length ? ` (${windows.map((w) => w.label).join(' and ')})` : '';
  return { summary, markdown: ['', ...section(`Service CPU profile${label}`, summaryMarkdown(summary))] };
}

/** Two workloads' profiles per order, the functions whose cost per order differs most first (keyed against unkeyed). */
export function compareCpuProfiles(a: PerUnit, b: PerUnit): string[] {
  return ['', ...section(`Service CPU profile, ${b.label} against ${a.label}, per order`, comparisonMarkdown(a, b, 'orders'))];
}
