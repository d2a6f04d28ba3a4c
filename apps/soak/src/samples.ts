import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import type { ApiSlot } from './topology.ts';

/** What is measured while the load runs: each instance's RSS, and the tables that grow with it. */

export const TABLES = ['orders', 'order_items', 'outbox_events', 'idempotency_keys', 'balance_ledger'] as const;

export interface RssSample {
  readonly atMs: number;
  readonly pid: number;
  readonly rssKb: number;
  /** V8's heap in use and the memory of objects outside it, from the instance's /metrics (null if it did not answer). */
  readonly heapUsedKb: number | null;
  readonly externalKb: number | null;
}

export interface TableSizes {
  readonly atMs: number;
  readonly bytes: Record<string, number>;
  readonly rows: Record<string, number>;
}

/** VmRSS of a process, from /proc (Linux); null once it is gone. */
export async function rssKb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const match = status?.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return match ? Number(match[1]) : null;
}

/**
 * Each table's bytes (every partition's, with indexes and TOAST), and with `countRows` its exact
 * rows: a count of millions of seeded rows is a scan, so the samples taken during the load have
 * bytes only.
 */
export async function tableSizes(pool: pg.Pool, atMs: number, countRows = false): Promise<TableSizes> {
  const [bytes, rows]: [Record<string, number>, Record<string, number>] = [{}, {}];
  for (const table of TABLES) {
    const { rows: [r] } = await pool.query<{ bytes: string; n: string | null }>(
      `SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('${table}')) AS bytes,
              ${countRows ? `(SELECT count(*) FROM ${table})` : 'NULL'} AS n`,
    );
    bytes[table] = Number(r!.bytes);
    if (r!.n !== null) rows[table] = Number(r!.n);
  }
  return { atMs, bytes, rows };
}

/** Every `everyMs`: each running instance's RSS, and the table sizes (skipped while the database is down). */
export class Sampler {
  readonly rss = new Map<ApiSlot['name'], RssSample[]>();
  readonly tables: TableSizes[] = [];
  private timer: NodeJS.Timeout | null = null;
  private t0 = 0;

  private readonly slots: readonly ApiSlot[];
  private readonly pool: pg.Pool;
  private readonly adminBearer: string;

  constructor(slots: readonly ApiSlot[], pool: pg.Pool, adminBearer: string) {
    this.slots = slots;
    this.pool = pool;
    this.adminBearer = adminBearer;
  }

  start(everyMs: number, t0: number): void {
    this.t0 = t0;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), everyMs);
  }

  /** Stops sampling, after a last sample. */
  async stop(): Promise<void> {
    this.halt();
    await this.sample();
  }

  halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample(): Promise<void> {
    const atMs = Date.now() - this.t0;
    for (const slot of this.slots) {
      const pid = slot.process?.child.pid;
      const kb = pid === undefined ? null : await rssKb(pid);
      if (pid === undefined || kb === null) continue;
      const figures = await scrapeMetrics(slot.url, this.adminBearer, ['nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes']).catch(() => null);
      const kib = (name: string) => (figures?.has(name) ? Math.round(figures.get(name)! / 1024) : null);
      if (!this.rss.has(slot.name)) this.rss.set(slot.name, []);
      this.rss.get(slot.name)!.push({ atMs, pid, rssKb: kb, heapUsedKb: kib('nodejs_heap_size_used_bytes'), externalKb: kib('nodejs_external_memory_bytes') });
    }
    const sizes = await tableSizes(this.pool, atMs).catch(() => null);
    if (sizes) this.tables.push(sizes);
  }
}

/** The figures of an instance's /metrics (admin token on the API port) whose names start with one of `prefixes`. */
export async function scrapeMetrics(baseUrl: string, adminBearer: string, prefixes: readonly string[]): Promise<Map<string, number>> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: adminBearer }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${baseUrl}/metrics: ${res.status}`);
  const figures = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
    if (m && prefixes.some((p) => m[1]!.startsWith(p))) figures.set(m[1]!, Number(m[2]));
  }
  return figures;
}

/** Events recorded at or before `before` and not yet delivered. */
export async function undeliveredBefore(pool: pg.Pool, before: Date): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM outbox_events WHERE delivered_at IS NULL AND created_at <= $1', [before]);
  return Number(rows[0]!.n);
}
