import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Receiver } from '../../../../test/support/receiver.ts';
import { round } from './stats.ts';

/**
 * What a measured window cost each process, from /proc/<pid>/stat (utime + stime) at its edges: the
 * service; PostgreSQL's postmaster and every process under it (backends that ended in the window
 * count through its cutime once reaped; other servers of the machine are not under it); the load
 * generator. And pg_stat_statements, reset as the window opens and read as it closes.
 */

const MS_PER_TICK = 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (pool: pg.Pool, sql: string, values: unknown[] = []) => (await pool.query<{ n: number }>(sql, values)).rows[0]!.n;

function readStat(pid: number) {
  try {
    // "pid (comm) state ppid …": comm may hold spaces and parentheses; f[n - 3] is field n.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
    return { pid, ppid: f[1]!, own: f[11]! + f[12]!, reaped: f[13]! + f[14]! };
  } catch {
    return null;
  }
}

/** CPU ticks a process has used so far (all its threads); null once it is gone. */
export const processTicks = (pid: number | null) => (pid === null ? null : (readStat(pid)?.own ?? null));

/** CPU ticks of a postmaster and every process under it, and how many processes that is. */
function clusterTicks(postmaster: number) {
  const children = new Map<number, Array<NonNullable<ReturnType<typeof readStat>>>>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    const s = readStat(Number(name));
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  }
  const root = readStat(postmaster);
  if (!root) return null;
  let [ticks, processes] = [0, 0];
  for (const todo = [root]; todo.length > 0; processes++) {
    const s = todo.pop()!;
    ticks += s.own + s.reaped;
    todo.push(...(children.get(s.pid) ?? []));
  }
  return { ticks, processes };
}

export type Meter = Awaited<ReturnType<typeof createMeter>>;
export type MeasuredWindow = ReturnType<Meter['window']>;
export type CpuWindow = NonNullable<Awaited<ReturnType<MeasuredWindow['result']>>['cpu']>;
export type StatementStats = Awaited<ReturnType<typeof readStatements>>;

/** The most expensive statements by total_exec_time, nested ones (track = all) included; top level counted once. */
async function readStatements(pool: pg.Pool) {
  const db = 'dbid = (SELECT oid FROM pg_database WHERE datname = current_database())';
  const { rows } = await pool.query<{ query: string; toplevel: boolean; calls: string; total: number; rows: string }>(
    `SELECT query, toplevel, calls, total_exec_time AS total, rows FROM pg_stat_statements
     WHERE ${db} AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 8`,
  );
  const sum = (await pool.query(`SELECT sum(total_exec_time) AS ms, sum(calls) AS calls FROM pg_stat_statements WHERE ${db} AND toplevel`)).rows[0];
  const top = rows.map((r) => ({
    query: r.query.replace(/\s+/g, ' ').trim(), toplevel: r.toplevel, calls: Number(r.calls), totalMs: r.total, rows: Number(r.rows),
  }));
  return { top, toplevelMs: Number(sum.ms ?? 0), toplevelCalls: Number(sum.calls ?? 0) };
}

export async function createMeter(pool: pg.Pool, servicePid: number | null, statements: boolean) {
  // The postmaster is the parent of one of the pool's backends, when that runs on this machine.
  const backend = readStat(await count(pool, 'SELECT pg_backend_pid() AS n'));
  let postmasterPid: number | null = null;
  try {
    if (backend && /postgres|postmaster/.test(readFileSync(`/proc/${backend.ppid}/cmdline`, 'utf8'))) postmasterPid = backend.ppid;
  } catch {
    postmasterPid = null;
  }
  const sample = (loadTicks: () => number | null) => {
    const cluster = postmasterPid === null ? null : clusterTicks(postmasterPid);
    const [service, load] = [processTicks(servicePid), loadTicks()];
    return { ms: performance.now(), service, postgres: cluster?.ticks ?? null, load, processes: cluster?.processes ?? 0 };
  };
  return {
    postmasterPid,
    /** One measured window: begin() and finish() sample synchronously, at the instant they are called. */
    window(loadTicks: () => number | null) {
      let [start, end] = [null, null] as Array<ReturnType<typeof sample> | null>;
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
          if (statements) chain = chain.then(async () => (stats = await readStatements(pool)));
        },
        async result() {
          await chain;
          const [a, b] = [start, end];
          if (!a || !b) return { cpu: null, statements: stats };
          const delta = (x: number | null, y: number | null) => (x === null || y === null ? null : Math.max(0, (y - x) * MS_PER_TICK));
          const cpu = {
            wallMs: b.ms - a.ms, serviceMs: delta(a.service, b.service), postgresMs: delta(a.postgres, b.postgres), loadMs: delta(a.load, b.load),
            /** PostgreSQL processes (postmaster included) seen at the window's end. */
            postgresProcesses: b.processes,
          };
          return { cpu, statements: stats };
        },
      };
    },
  };
}

/** Waits until the outbox holds no undelivered record (the relay has caught up). */
export async function waitForDelivery(pool: pg.Pool, timeoutMs = 180_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(200)) {
    const n = await count(pool, 'SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL');
    if (n === 0) return;
    if (Date.now() > deadline) throw new Error(`${n} events still undelivered after ${timeoutMs} ms`);
  }
}

/**
 * The same quiet server before each measured run: the previous run's events delivered, the tables
 * it grew vacuumed and analysed, its dirty pages written. Otherwise a run pays for the autovacuum
 * and checkpoint of the runs before it, and a same-run ratio between twins measures their order.
 */
export async function quiesce(pool: pg.Pool): Promise<void> {
  await waitForDelivery(pool);
  // Not an empty table: its statistics would then say "empty" for the whole next run, and plans
  // cached on that scan it as it grows (seen costing 0.2-0.35 ms per order in uniform).
  const tables = ['users', 'products', 'orders', 'order_items', 'balance_ledger', 'user_coupons', 'outbox_events', 'idempotency_keys'];
  const filled = [];
  for (const t of tables) if ((await pool.query(`SELECT 1 FROM ${t} LIMIT 1`)).rowCount) filled.push(t);
  if (filled.length > 0) await pool.query(`VACUUM (ANALYZE) ${filled.join(', ')}`);
  await pool.query('CHECKPOINT').catch(() => undefined); // needs superuser or pg_checkpoint: not on every --url database
}

export type LockWaits = Awaited<ReturnType<ReturnType<typeof observeLockWaits>['stop']>>;
/** How many sessions of the database wait on a lock, sampled every 20 ms until stopped. */
export function observeLockWaits(pool: pg.Pool) {
  const seen: number[] = [];
  let running = true;
  const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
  const loop = (async () => {
    for (; running; await sleep(20)) seen.push(await count(pool, waiting));
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples: seen.length, max: Math.max(0, ...seen), mean: seen.length ? round(seen.reduce((a, b) => a + b, 0) / seen.length) : 0 };
    },
  };
}

export type EventCheck = Awaited<ReturnType<typeof checkEvents>>;
/**
 * Every recorded event reached the platform once; nothing arrived that was not recorded. Events
 * delivered before `seededBefore` are a --scale seed's history, older than this run's receiver.
 */
export async function checkEvents(pool: pg.Pool, receiver: Receiver | null, seededBefore: Date | null) {
  const { rows } = await pool.query<{ event_id: string; delivered: boolean }>(
    `SELECT event_id::text, delivered_at IS NOT NULL AS delivered FROM outbox_events
     WHERE delivered_at IS NULL OR $1::timestamptz IS NULL OR created_at >= $1::timestamptz`,
    [seededBefore],
  );
  const violations: string[] = [];
  const undelivered = rows.filter((r) => !r.delivered).length;
  if (undelivered > 0) violations.push(`events: ${undelivered} recorded events were never delivered`);
  if (!receiver) return { recorded: rows.length, undelivered, received: null, duplicates: null, violations };
  const received = new Set(receiver.accepted.map((e) => e.body.eventId as string));
  const recorded = new Set(rows.map((r) => r.event_id));
  const missing = [...recorded].filter((id) => !received.has(id)).length;
  const invented = [...received].filter((id) => !recorded.has(id)).length;
  const duplicates = receiver.duplicates();
  if (missing > 0) violations.push(`events: ${missing} recorded events never reached the receiver`);
  if (invented > 0) violations.push(`events: ${invented} events reached the receiver that were never recorded`);
  if (duplicates > 0) violations.push(`events: ${duplicates} deliveries repeated an eventId (no process crashed, so none is expected)`);
  return { recorded: rows.length, undelivered, received: received.size, duplicates, violations };
}

/** --cpu-prof: the service's hottest functions by self time, as a share of its busy (non-idle) samples: table rows. */
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
  return rows.map(([key, hits]) => `| ${((hits / Math.max(1, busy)) * 100).toFixed(1)}% | \`${key.replace(/\|/g, '\\|')}\` |`);
}
