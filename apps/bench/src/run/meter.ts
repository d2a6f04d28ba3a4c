import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';

/**
 * What one measured window cost each process, from /proc/<pid>/stat (utime + stime) at its edges:
 * the service's process; PostgreSQL's postmaster and every process under it (backends that ended
 * in the window count through the postmaster's cutime once reaped; other servers of the machine
 * are not under it); the load generator (load process, Node ceiling process or pgbench). And
 * pg_stat_statements, reset as the window opens and read as it closes.
 */

const MS_PER_TICK = 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);

function readStat(pid: number): { pid: number; ppid: number; own: number; reaped: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; f[n - 3] is field n.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

/** CPU ticks a process has used so far (all its threads); null once it is gone. */
export const processTicks = (pid: number | null): number | null => (pid === null ? null : (readStat(pid)?.own ?? null));

/** CPU ticks of a postmaster and every process under it, and how many processes that is. */
function clusterTicks(postmaster: number): { ticks: number; processes: number } | null {
  const root = readStat(postmaster);
  if (!root) return null;
  const children = new Map<number, Array<NonNullable<ReturnType<typeof readStat>>>>();
  for (const name of readdirSync('/proc')) {
    const s = /^\d+$/.test(name) ? readStat(Number(name)) : null;
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  }
  let ticks = root.own + root.reaped;
  let processes = 1;
  for (const todo = [...(children.get(postmaster) ?? [])]; todo.length > 0; ) {
    const s = todo.pop()!;
    ticks += s.own + s.reaped;
    processes++;
    todo.push(...(children.get(s.pid) ?? []));
  }
  return { ticks, processes };
}

/** CPU milliseconds each process spent in one window; null where it was not visible. */
export interface CpuWindow {
  readonly wallMs: number;
  readonly serviceMs: number | null;
  readonly postgresMs: number | null;
  readonly loadMs: number | null;
  /** PostgreSQL processes (postmaster included) seen at the window's end. */
  readonly postgresProcesses: number;
}

export interface StatementStats {
  /** The most expensive statements by total_exec_time, nested ones (track = all) included. */
  readonly top: Array<{ query: string; toplevel: boolean; calls: number; totalMs: number; rows: number }>;
  /** The top-level statements' total: the database's execution time, counted once. */
  readonly toplevelMs: number;
  readonly toplevelCalls: number;
}

export type Meter = Awaited<ReturnType<typeof createMeter>>;
export type MeasuredWindow = ReturnType<Meter['window']>;

export async function createMeter(pool: pg.Pool, servicePid: number | null, statements: boolean) {
  // The postmaster is the parent of one of the pool's backends, when that runs on this machine.
  const backend = readStat((await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
  let postmasterPid: number | null = null;
  try {
    if (backend && /postgres|postmaster/.test(readFileSync(`/proc/${backend.ppid}/cmdline`, 'utf8'))) postmasterPid = backend.ppid;
  } catch {
    postmasterPid = null;
  }
  const sample = (loadTicks: () => number | null) => {
    const cluster = postmasterPid === null ? null : clusterTicks(postmasterPid);
    const load = loadTicks();
    return { ms: performance.now(), service: processTicks(servicePid), postgres: cluster?.ticks ?? null, load, processes: cluster?.processes ?? 0 };
  };
  const readStatements = async (limit = 8): Promise<StatementStats | null> => {
    if (!statements) return null;
    const db = 'dbid = (SELECT oid FROM pg_database WHERE datname = current_database())';
    const { rows } = await pool.query<{ query: string; toplevel: boolean; calls: string; total: number; rows: string }>(
      `SELECT query, toplevel, calls, total_exec_time AS total, rows FROM pg_stat_statements
       WHERE ${db} AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT $1`,
      [limit],
    );
    const sum = (await pool.query(`SELECT sum(total_exec_time) AS ms, sum(calls) AS calls FROM pg_stat_statements WHERE ${db} AND toplevel`)).rows[0];
    return {
      top: rows.map((r) => ({ query: r.query.replace(/\s+/g, ' ').trim(), toplevel: r.toplevel, calls: Number(r.calls), totalMs: r.total, rows: Number(r.rows) })),
      toplevelMs: sum.ms ?? 0,
      toplevelCalls: Number(sum.calls ?? 0),
    };
  };
  return {
    postmasterPid,
    /** One measured window: begin() and finish() sample synchronously, at the instant they are called. */
    window(loadTicks: () => number | null) {
      let start: ReturnType<typeof sample> | null = null;
      let end: ReturnType<typeof sample> | null = null;
      let chain: Promise<unknown> = Promise.resolve();
      let stats: StatementStats | null = null;
      return {
        begin() {
          start = sample(loadTicks);
          if (statements) chain = chain.then(() => pool.query('SELECT pg_stat_statements_reset()'));
        },
        finish() {
          if (!start || end) return;
          end = sample(loadTicks);
          chain = chain.then(async () => (stats = await readStatements()));
        },
        async result(): Promise<{ cpu: CpuWindow | null; statements: StatementStats | null }> {
          await chain;
          if (!start || !end) return { cpu: null, statements: stats };
          const [a, b] = [start as ReturnType<typeof sample>, end as ReturnType<typeof sample>];
          const delta = (x: number | null, y: number | null) => (x === null || y === null ? null : Math.max(0, (y - x) * MS_PER_TICK));
          const cpu = { wallMs: b.ms - a.ms, serviceMs: delta(a.service, b.service), postgresMs: delta(a.postgres, b.postgres), loadMs: delta(a.load, b.load) };
          return { cpu: { ...cpu, postgresProcesses: b.processes }, statements: stats };
        },
      };
    },
  };
}
