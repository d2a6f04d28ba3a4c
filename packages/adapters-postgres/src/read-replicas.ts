import { sql, type Kysely } from 'kysely';
import { isDomainError } from '@shop/domain';
import { openDatabase, type Db } from './database.ts';
import type { Database } from './schema.ts';

export interface ReadReplicaOptions {
  /** Each replica's connection string (DATABASE_READ_URL, a comma list). */
  readonly urls: readonly string[];
  /** A replica further behind than this is not read from (DATABASE_READ_MAX_LAG_MS). */
  readonly maxLagMs: number;
  /** How often each replica's lag is measured. */
  readonly checkMs?: number;
  /** Connections per replica. */
  readonly poolSize?: number;
  /**
   * Longest a read waits for a replica (a connection, then its statement) before it is read on the
   * primary instead: a replica that is down or stuck costs a request this much at most, once.
   */
  readonly waitMs?: number;
  /** Told where each read went (a metric). */
  readonly onRead?: (on: 'replica' | 'primary') => void;
}

export interface ReplicaState {
  readonly url: string;
  /** Read from now: reachable at the last check, and at most maxLagMs behind. */
  readonly healthy: boolean;
  /** How far behind the primary it was at the last check (an upper bound); null when unknown. */
  readonly lagMs: number | null;
}

interface Replica {
  readonly url: string;
  readonly db: Db;
  lagMs: number | null;
  healthy: boolean;
}

/** pg_lsn as a byte position, exact (LSNs pass 2^53). */
const LSN_BYTES = (expr: string) => sql.raw(`pg_wal_lsn_diff(${expr}, '0/0')::text`);

/**
 * Streaming replicas for the reads that may be a moment old (the catalog, best sellers). Each one's
 * lag is measured in time, not bytes: every check samples the primary's WAL position with the
 * time, and a replica that has replayed position R holds at least everything the primary had at
 * the latest sample at or below R, so its lag is at most now − that sample's time. An idle
 * primary's replica is thus never "behind", and a replica whose replay is paused or stopped falls
 * behind as the primary moves on. A replica not checked successfully lately is not read from;
 * a read that fails on a replica marks it down and is read on the primary.
 */
export class ReadReplicas {
  private readonly replicas: Replica[];
  /** [time ms, primary WAL position]: the last few seconds of samples, oldest first. */
  private samples: Array<[number, bigint]> = [];
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private lastCheck = 0;
  private readonly primary: Kysely<Database>;
  private readonly options: ReadReplicaOptions;

  constructor(primary: Kysely<Database>, options: ReadReplicaOptions) {
    this.primary = primary;
    this.options = options;
    const waitMs = options.waitMs ?? 1_000;
    this.replicas = options.urls.map((url) => ({
      url,
      db: openDatabase({
        connectionString: url,
        max: options.poolSize ?? 8,
        applicationName: 'order-service-reads',
        statementTimeoutMs: waitMs,
        acquireTimeoutMs: waitMs,
      }),
      lagMs: null,
      healthy: false,
    }));
  }

  /** Measures at once, then every checkMs. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.checkMs ?? 200);
    this.timer.unref();
  }

  /** One measurement of every replica's lag (concurrent calls share it). */
  check(): Promise<void> {
    this.checking ??= this.measure().finally(() => (this.checking = null));
    return this.checking;
  }

  private async measure(): Promise<void> {
    const now = Date.now();
    try {
      const { rows } = await sql<{ lsn: string }>`SELECT ${LSN_BYTES('pg_current_wal_lsn()')} AS lsn`.execute(this.primary);
      this.samples.push([now, BigInt(rows[0]!.lsn)]);
    } catch {
      // Without the primary's position no lag can be known: read nothing from the replicas.
      for (const r of this.replicas) r.healthy = false;
      return;
    }
    const keepMs = Math.max(10_000, this.options.maxLagMs * 4);
    while (this.samples.length > 2 && this.samples[1]![0] < now - keepMs) this.samples.shift();
    await Promise.all(
      this.replicas.map(async (r) => {
        try {
          const { rows } = await sql<{ lsn: string | null }>`SELECT ${LSN_BYTES('pg_last_wal_replay_lsn()')} AS lsn`.execute(r.db.kysely);
          const replayed = rows[0]!.lsn;
          // null: not a standby (a misconfigured URL); never read from it as a replica.
          r.lagMs = replayed === null ? null : this.lagOf(BigInt(replayed), Date.now());
        } catch {
          r.lagMs = null;
        }
        r.healthy = r.lagMs !== null && r.lagMs <= this.options.maxLagMs;
      }),
    );
    this.lastCheck = now;
  }

  private lagOf(replayed: bigint, now: number): number | null {
    let held: number | null = null;
    for (const [at, lsn] of this.samples) if (lsn <= replayed) held = at;
    if (held === null) return null; // behind every sample kept: further behind than anything we read from
    const newest = this.samples.at(-1)!;
    return replayed >= newest[1] ? 0 : now - held;
  }

  /** A replica to read from, in turn among the healthy ones; null: read on the primary. */
  private pick(): Replica | null {
    // Checks that stopped (a stuck primary, a blocked event loop) leave nothing known to be fresh.
    if (Date.now() - this.lastCheck > this.options.maxLagMs) return null;
    // Its lag grows as the last check ages: a replica is read only while still within the limit.
    const sinceCheck = Date.now() - this.lastCheck;
    const healthy = this.replicas.filter((r) => r.healthy && r.lagMs !== null && r.lagMs + sinceCheck <= this.options.maxLagMs);
    if (healthy.length === 0) return null;
    return healthy[this.next++ % healthy.length]!;
  }

  /** Runs `read` on a healthy replica, or on the primary when none is, or when the replica fails. */
  async read<T>(read: (db: Kysely<Database>, on: 'replica' | 'primary') => Promise<T>): Promise<T> {
    const replica = this.pick();
    if (replica) {
      try {
        const result = await read(replica.db.kysely, 'replica');
        this.options.onRead?.('replica');
        return result;
      } catch (err) {
        // The request's own fault (a malformed cursor) is not the replica's: answered as it is.
        if (isDomainError(err)) throw err;
        replica.healthy = false; // until a check finds it answering and close enough again
      }
    }
    this.options.onRead?.('primary');
    return read(this.primary, 'primary');
  }

  states(): ReplicaState[] {
    return this.replicas.map(({ url, healthy, lagMs }) => ({ url, healthy, lagMs }));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.checking?.catch(() => undefined);
    await Promise.all(this.replicas.map((r) => r.db.close()));
  }
}
