import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import {
  holdProductRow, ordersOfUsers, pgbenchEnv, pgbenchScript, pgbenchVars, productSales, sessions, type PgbenchWorkload,
} from '@shop/adapters-postgres/bench';
import { processTicks, type Meter } from './measure.ts';
import { round, sleep, summarise, type Sample, type Shape } from './stats.ts';
import { HOT_STOCK, type PgbenchRows } from './target.ts';

/** The database's own limit: pgbench (-M prepared), the adapter's textbook order transaction on rows of its own, audited as the service's. */

const APP_NAME = 'bench-pgbench';
export const PGBENCH_THREADS = 2;

/** pgbench's version when it is on PATH; null otherwise (the Node runners are the ceilings then). */
export function pgbenchVersion(): string | null {
  const r = spawnSync('pgbench', ['--version']);
  return r.error ? null : r.stdout.toString().trim() || 'pgbench (version unknown)';
}

const epochNow = () => performance.timeOrigin + performance.now();

/**
 * uniform: pgbench runs for warm-up + window + 2 s, the window a warm-up after all its clients connected, its log's transactions inside counted.
 * hot-product: each client runs its share; a gate holds the hot row until all wait on it, and its release opens the window; pgbench's exit closes it.
 */
type PgbenchRun = { databaseUrl: string; clients: number; shape: Shape; rows: PgbenchRows; pool: pg.Pool; meter: Meter };
export async function runPgbench(workload: PgbenchWorkload, o: PgbenchRun) {
  const { shape, rows: f, pool } = o;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pgbench-'));
  writeFileSync(path.join(dir, `${workload}.sql`), pgbenchScript(workload));
  const length = shape.kind === 'timed'
    ? ['-T', `${Math.ceil((shape.warmupMs + shape.durationMs) / 1000) + 2}`] : ['-t', `${Math.ceil(shape.attempts / o.clients)}`];
  const args = ['-n', '-M', 'prepared', '-c', `${o.clients}`, '-j', `${PGBENCH_THREADS}`, ...length, '-f', `${workload}.sql`, '-l', '--log-prefix', 'tx',
    ...pgbenchVars({ ufirst: f.users.first, ulast: f.users.last, pfirst: f.products.first, plast: f.products.last, hot: f.hotProductId })];
  const ordersOfItsUsers = () => ordersOfUsers(pool, f.users.first, f.users.last);
  const ordersBefore = await ordersOfItsUsers();
  const gate = workload === 'hot-product' ? await holdProductRow(pool, f.hotProductId) : null;
  const child = spawn('pgbench', args, { cwd: dir, env: { ...process.env, ...pgbenchEnv(o.databaseUrl, APP_NAME) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr, exitCode] = ['', '', null as number | null];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => resolve(void (exitCode = code ?? (signal ? 128 : 0)))));
  // pgbench's CPU, polled, so that its last reading survives its exit.
  let lastTicks = processTicks(child.pid!);
  const poll = setInterval(() => (lastTicks = processTicks(child.pid!) ?? lastTicks), 20);
  const window = o.meter.window(() => processTicks(child.pid!) ?? lastTicks);
  const waiting = () => sessions(pool, { applicationName: APP_NAME, onLock: gate !== null });
  for (const deadline = Date.now() + 60_000; (await waiting()) < o.clients; await sleep(10)) {
    if (exitCode === null && Date.now() <= deadline) continue;
    clearInterval(poll);
    await gate?.release(false);
    await exited;
    throw new Error(`pgbench did not connect its ${o.clients} clients (exit ${exitCode}):\n${stderr.slice(-2000)}`);
  }
  if (shape.kind === 'timed') await sleep(shape.warmupMs);
  window.mark();
  const windowStart = epochNow();
  let windowEnd = Number.POSITIVE_INFINITY;
  if (shape.kind === 'count') await gate!.release(true);
  else {
    await sleep(shape.durationMs);
    window.mark();
    windowEnd = epochNow();
  }
  await exited;
  window.mark(); // hot: closes as pgbench exits (timed: closed already)
  clearInterval(poll);

  // Per-transaction log, one file per thread: client, number, latency µs (or failed, skipped), script, epoch s, µs.
  const logged = readdirSync(dir).filter((n) => n.startsWith('tx')).flatMap((file) => readFileSync(path.join(dir, file), 'utf8').split('\n'))
    .map((l) => l.split(' ')).filter((t) => t.length >= 6);
  const [samples, failedInLog] = [[] as Sample[], logged.filter((t) => t[2] === 'failed' || t[2] === 'skipped').length];
  let lastEnd = windowStart;
  for (const t of logged.filter((t) => t[2] !== 'failed' && t[2] !== 'skipped')) {
    const end = Number(t[4]) * 1000 + Number(t[5]) / 1000;
    // Each client's first hot attempt began before the gate opened: counted from the opening.
    const start = Math.max(end - Number(t[2]) / 1000, shape.kind === 'count' ? windowStart : 0);
    if (start < windowStart || end > windowEnd) continue;
    lastEnd = Math.max(lastEnd, end);
    samples.push([start - windowStart, end - start, workload === 'uniform' ? 201 : 200, '', workload === 'uniform' ? 1 : 0]);
  }
  rmSync(dir, { recursive: true, force: true });
  const problems = [exitCode !== 0 ? `pgbench exited with ${exitCode}` : '', failedInLog > 0 ? `${failedInLog} transactions failed` : '',
    ...stderr.split('\n').filter((l) => /aborted|error/i.test(l)).slice(0, 6).map((l) => l.trim())].filter(Boolean);
  const windowMs = shape.kind === 'timed' ? shape.durationMs : lastEnd - windowStart;
  const transactions = samples.length;
  const pgbench = { tps: round(transactions / (windowMs / 1000)), transactions, command: `pgbench ${args.join(' ')}`,
    summary: stdout.split('\n').filter((l) => /^(number of (transactions|failed)|latency|initial connection|tps)/.test(l)) };
  // Every transaction pgbench processed left exactly one order of its users (hot: one per unit sold).
  const made = (await ordersOfItsUsers()) - ordersBefore;
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? NaN);
  const base = summarise({ samples, windowMs, transportErrors: 0 });
  if (workload === 'uniform') {
    if (made !== processed) problems.push(`pgbench processed ${processed} transactions, its users have ${made} new orders`);
    return { summary: { ...base, outcomes: { committed: transactions } }, samples, pgbench, window, problems, orders: transactions };
  }
  // hot: what was sold is in the database; the last sale's order carries its clock time.
  const sold = await productSales(pool, f.hotProductId);
  if (sold.n !== HOT_STOCK || Number(sold.stock) !== 0 || made !== HOT_STOCK) {
    problems.push(`${sold.n} sold, ${made} orders, stock left ${sold.stock}; expected exactly ${HOT_STOCK} sold and stock 0`);
  }
  const outcomes = { 'sold (committed)': sold.n, 'out of stock (rolled back)': transactions - sold.n };
  const summary = { ...base, orders: sold.n, ordersPerSecond: round(sold.n / (windowMs / 1000)), outcomes };
  const salesPerSecond = round(sold.n / (((sold.last ? sold.last.getTime() - windowStart : windowMs)) / 1000));
  return { summary, samples, pgbench, window, problems, orders: sold.n, salesPerSecond };
}
