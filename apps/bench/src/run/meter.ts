import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';

/**
 * What one measured window cost, per process, read from /proc/<pid>/stat (utime + stime, in clock
 * ticks) at the window's start and end:
 * - the service: its process (all its threads);
 * - PostgreSQL: the postmaster of the benchmark's cluster and every process under it (backends,
 *   background workers), found by walking /proc's parent links; the CPU of backends that ended
 *   during the window is in the postmaster's cutime/cstime once it has reaped them, so it counts;
 * - the load generator: the load process, the Node ceiling process, or pgbench.
 * Other PostgreSQL servers of the machine are not under this postmaster and are not counted.
 */

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
const MS_PER_TICK = 1000 / TICKS_PER_SECOND;

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime */
  readonly own: number;
  /** cutime + cstime: children it has waited for */
  readonly reaped: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): field n is f[n - 3].
  return { pid, ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

/** CPU ticks a process has used so far (all its threads); null once it is gone. */
export function processTicks(pid: number | null): number | null {
  if (pid === null) return null;
  const s = readStat(pid);
  return s ? s.own : null;
}

/** CPU ticks of a postmaster and every process under it, and how many processes that is. */
export function clusterTicks(postmasterPid: number): { ticks: number; processes: number } | null {
  const root = readStat(postmasterPid);
  if (!root) return null;
  const children = new Map<number, ProcStat[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (!s) continue;
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  let ticks = root.own + root.reaped;
  let processes = 1;
  const todo = [...(children.get(postmasterPid) ?? [])];
  while (todo.length > 0) {
    const s = todo.pop()!;
    ticks += s.own + s.reaped;
    processes++;
    todo.push(...(children.get(s.pid) ?? []));
  }
  return { ticks, processes };
}

/** The postmaster of the server `pool` talks to: the parent of one of its backends, when on this machine. */
export async function findPostmaster(pool: pg.Pool): Promise<number | null> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = readStat(rows[0]!.pid);
  if (!backend) return null;
  try {
    const cmd = readFileSync(`/proc/${backend.ppid}/cmdline`, 'utf8');
    return /postgres|postmaster/.test(cmd) ? backend.ppid : null;
  } catch {
    return null;
  }
}

export interface CpuSnapshot {
  readonly atMs: number;
  readonly service: number | null;
  readonly postgres: number | null;
  readonly postgresProcesses: number;
  readonly load: number | null;
}

/** CPU milliseconds each process spent in one window; null where the process was not visible. */
export interface CpuWindow {
  readonly wallMs: number;
  readonly serviceMs: number | null;
  readonly postgresMs: number | null;
  readonly loadMs: number | null;
  /** PostgreSQL processes (postmaster included) seen at the window's end. */
  readonly postgresProcesses: number;
}

export interface StatementRow {
  readonly query: string;
  readonly toplevel: boolean;
  readonly calls: number;
  readonly totalMs: number;
  readonly rows: number;
}

export interface StatementStats {
  /** The most expensive statements by total_exec_time, nested ones (track = all) included. */
  readonly top: StatementRow[];
  /** total_exec_time of the top-level statements: the database's execution time, once. */
  readonly toplevelMs: number;
  readonly toplevelCalls: number;
}

/** Samples the service's, the cluster's and a load generator's CPU, and reads pg_stat_statements. */
export class Meter {
  private readonly pool: pg.Pool;
  readonly servicePid: number | null;
  readonly postmasterPid: number | null;
  readonly statements: boolean;

  private constructor(pool: pg.Pool, servicePid: number | null, postmasterPid: number | null, statements: boolean) {
    this.pool = pool;
    this.servicePid = servicePid;
    this.postmasterPid = postmasterPid;
    this.statements = statements;
  }

  static async create(pool: pg.Pool, servicePid: number | null, statements: boolean): Promise<Meter> {
    return new Meter(pool, servicePid, await findPostmaster(pool), statements);
  }

  /** Synchronous, so it is taken at the instant it is called. */
  sample(loadTicks: () => number | null): CpuSnapshot {
    const cluster = this.postmasterPid === null ? null : clusterTicks(this.postmasterPid);
    return {
      atMs: performance.now(),
      service: processTicks(this.servicePid),
      postgres: cluster?.ticks ?? null,
      postgresProcesses: cluster?.processes ?? 0,
      load: loadTicks(),
    };
  }

  async resetStatements(): Promise<void> {
    if (this.statements) await this.pool.query('SELECT pg_stat_statements_reset()');
  }

  async readStatements(limit = 8): Promise<StatementStats | null> {
    if (!this.statements) return null;
    const db = '(SELECT oid FROM pg_database WHERE datname = current_database())';
    const { rows } = await this.pool.query<{ query: string; toplevel: boolean; calls: string; total: number; rows: string }>(
      `SELECT query, toplevel, calls, total_exec_time AS total, rows FROM pg_stat_statements
       WHERE dbid = ${db} AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT $1`,
      [limit],
    );
    const sum = (await this.pool.query<{ ms: number | null; calls: string | null }>(
      `SELECT sum(total_exec_time) AS ms, sum(calls) AS calls FROM pg_stat_statements WHERE dbid = ${db} AND toplevel`,
    )).rows[0]!;
    return {
      top: rows.map((r) => ({ query: r.query.replace(/\s+/g, ' ').trim(), toplevel: r.toplevel, calls: Number(r.calls), totalMs: r.total, rows: Number(r.rows) })),
      toplevelMs: sum.ms ?? 0,
      toplevelCalls: Number(sum.calls ?? 0),
    };
  }

  /** One measured window: begin() and finish() at its edges (both synchronous samples). */
  window(loadTicks: () => number | null): MeasuredWindow {
    return new MeasuredWindow(this, loadTicks);
  }
}

export class MeasuredWindow {
  private start: CpuSnapshot | null = null;
  private end: CpuSnapshot | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private stats: StatementStats | null = null;
  private readonly meter: Meter;
  private readonly loadTicks: () => number | null;

  constructor(meter: Meter, loadTicks: () => number | null) {
    this.meter = meter;
    this.loadTicks = loadTicks;
  }

  begin(): void {
    this.start = this.meter.sample(this.loadTicks);
    this.chain = this.chain.then(() => this.meter.resetStatements());
  }

  finish(): void {
    if (!this.start || this.end) return;
    this.end = this.meter.sample(this.loadTicks);
    this.chain = this.chain.then(async () => {
      this.stats = await this.meter.readStatements();
    });
  }

  async result(): Promise<{ cpu: CpuWindow | null; statements: StatementStats | null }> {
    await this.chain;
    const a = this.start;
    const b = this.end;
    if (!a || !b) return { cpu: null, statements: this.stats };
    const delta = (x: number | null, y: number | null) => (x === null || y === null ? null : Math.max(0, (y - x) * MS_PER_TICK));
    return {
      cpu: {
        wallMs: b.atMs - a.atMs,
        serviceMs: delta(a.service, b.service),
        postgresMs: delta(a.postgres, b.postgres),
        loadMs: delta(a.load, b.load),
        postgresProcesses: b.postgresProcesses,
      },
      statements: this.stats,
    };
  }
}
