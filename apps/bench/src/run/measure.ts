import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { backendPid, recordedEvents, resetStatements, sessions, topStatements, type StatementStats } from '@shop/adapters-postgres/bench';
import type { Receiver } from '../../../../test/support/receiver.ts';
import { monotonicUs, summariseProfiles, summaryMarkdown, type CpuProfile, type ProfileSummary } from '@shop/cpu-profile';
import { section } from './report.ts';
import { round, sleep, tryOr } from './stats.ts';

// What a measured window cost each process, utime + stime from /proc/<pid>/stat at its edges: the service; PostgreSQL's postmaster and every
// process under it (ended backends through its cutime); the load generator. And pg_stat_statements, reset as it opens and read as it closes.

const MS_PER_TICK = 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);

const readProc = (file: string) => tryOr(() => readFileSync(`/proc/${file}`, 'utf8')); // undefined: gone, or not this machine's
function readStat(pid: number) {
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; f[n - 3] is field n.
  const text = readProc(`${pid}/stat`);
  const f = text?.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
  return f ? { pid, ppid: f[1]!, own: f[11]! + f[12]!, sys: f[12]!, reaped: f[13]! + f[14]! } : null;
}

/** CPU ticks a process has used so far (all its threads); null once it is gone. */
export const processTicks = (pid: number | null) => (pid === null ? null : (readStat(pid)?.own ?? null));

/** CPU ticks of a postmaster and every process under it, and how many processes that is. */
function clusterTicks(postmaster: number) {
  const all = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => readStat(Number(n)) ?? []);
  const under = (pid: number): typeof all => all.filter((s) => s.ppid === pid).flatMap((s) => [s, ...under(s.pid)]);
  const cluster = [...all.filter((s) => s.pid === postmaster), ...under(postmaster)];
  return cluster.length === 0 ? null : { ticks: cluster.reduce((t, s) => t + s.own + s.reaped, 0), processes: cluster.length };
}

export type Meter = Awaited<ReturnType<typeof createMeter>>;
export type MeasuredWindow = ReturnType<Meter['window']>;
type Window = { fromUs: number; toUs: number; label: string };
export type CpuWindow = NonNullable<Awaited<ReturnType<MeasuredWindow['result']>>['cpu']>;

export async function createMeter(pool: pg.Pool, servicePid: number | null, statements: boolean) {
  // The postmaster is the parent of one of the pool's backends, when that runs on this machine.
  const backend = readStat(await backendPid(pool));
  const postmasterPid = backend && /postgres|postmaster/.test(readProc(`${backend.ppid}/cmdline`) ?? '') ? backend.ppid : null;
  const sample = (loadTicks: () => number | null) => {
    const cluster = postmasterPid === null ? null : clusterTicks(postmasterPid);
    const [st, load] = [servicePid === null ? null : readStat(servicePid), loadTicks()];
    // serviceSys: the kernel's part of the service's CPU (stime), which V8's profile cannot tell from time preempted in a syscall.
    return { ms: performance.now(), us: monotonicUs(), service: st?.own ?? null, serviceSys: st?.sys ?? null, postgres: cluster?.ticks ?? null, load, processes: cluster?.processes ?? 0 };
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
          const delta = (k: 'service' | 'serviceSys' | 'postgres' | 'load') => (a?.[k] == null || b?.[k] == null ? null : Math.max(0, (b[k] - a[k]) * MS_PER_TICK));
          // postgresProcesses: the postmaster and the processes under it, at the window's end.
          // fromUs, toUs: the window on the monotonic clock, as the service's CPU profile stamps its samples.
          const cpu = a && b ? { wallMs: b.ms - a.ms, fromUs: a.us, toUs: b.us, serviceMs: delta('service'), serviceSysMs: delta('serviceSys'), postgresMs: delta('postgres'), loadMs: delta('load'),
            postgresProcesses: b.processes } : null;
          return { cpu, statements: stats };
        },
      };
    },
  };
}

export type LockWaits = Awaited<ReturnType<ReturnType<typeof observeLockWaits>['stop']>>;
/** How many sessions of the database wait on a lock, sampled every 20 ms until stopped. */
export function observeLockWaits(pool: pg.Pool) {
  const [seen, state] = [[] as number[], { running: true }];
  const loop = (async () => {
    for (; state.running; await sleep(20)) seen.push(await sessions(pool, { onLock: true }));
  })();
  return {
    async stop() {
      state.running = false;
      await loop;
      return { samples: seen.length, max: Math.max(0, ...seen), mean: seen.length ? round(seen.reduce((a, b) => a + b, 0) / seen.length) : 0 };
    },
  };
}

export type EventCheck = Awaited<ReturnType<typeof checkEvents>>;
/** Every recorded event reached the platform once, nothing arrived unrecorded; but for a --scale seed's, delivered before `seededBefore`. */
export async function checkEvents(pool: pg.Pool, receiver: Receiver | null, seededBefore: Date | null) {
  const rows = await recordedEvents(pool, seededBefore);
  const undelivered = rows.filter((r) => !r.delivered).length;
  const [recorded, received] = [new Set(rows.map((r) => r.event_id)), receiver && new Set(receiver.accepted.map((e) => e.body.eventId as string))];
  const duplicates = receiver?.duplicates() ?? null;
  const [missing, invented] = received ? [[...recorded].filter((id) => !received.has(id)), [...received].filter((id) => !recorded.has(id))] : [[], []];
  const violations = [
    undelivered > 0 && `events: ${undelivered} recorded events were never delivered`,
    missing.length > 0 && `events: ${missing.length} recorded events never reached the receiver`,
    invented.length > 0 && `events: ${invented.length} events reached the receiver that were never recorded`,
    duplicates && `events: ${duplicates} deliveries repeated an eventId (no process crashed, so none is expected)`,
  ].filter((v) => typeof v === 'string');
  return { recorded: rows.length, undelivered, received: received?.size ?? null, duplicates, violations };
}

/** --cpu-prof: where the service's busy samples went (self time by package and by function), inside `window` (a run's) when given. */
export function summariseCpuProfiles(dir: string, window?: Window): { summary: ProfileSummary; markdown: string[] } {
  const profiles = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile);
  const summary = summariseProfiles(profiles, window);
  return { summary, markdown: ['', ...section(`Service CPU profile${window ? ` (${window.label})` : ''}`, summaryMarkdown(summary))] };
}
