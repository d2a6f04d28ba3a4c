import type pg from 'pg';
import { startReplicatedCluster } from '../postgres-replicas.ts';

/** What of the benchmark's target (apps/bench/src/run/target.ts) the workloads across servers use. */
export interface ScalingTarget {
  readonly baseUrl: string;
  readonly authSecret: string;
  /** The run's database, for its checks, never for load. */
  readonly pool: pg.Pool;
  /** The streaming replica of the run's database, when the benchmark started one: its URL, its postmaster's pid. */
  readonly replica: { readonly url: string; pid(): number | null } | null;
  /** The run's HTTP receiver of events (null with --url): every event the run recorded must reach it once. */
  readonly receiver: { readonly accepted: Array<{ idempotencyKey: string | undefined; body: any; at: number }> } | null;
  /** Stops the service and starts it again with `env` over the run's settings ({}: back to the run's own). */
  restart(env: Readonly<Record<string, string>>): Promise<void>;
}

/** What of a run record (apps/bench/src/run/report.ts) their lines in the report read. */
export interface RunLike {
  readonly workload: string;
  readonly runner: string;
  readonly summary: {
    readonly requests: number; readonly requestsPerSecond: number; readonly ordersPerSecond: number; readonly outcomes: Readonly<Record<string, number>>;
  };
  readonly cost?: { readonly cpu: { readonly postgresMs: number | null; readonly serviceMs: number | null } };
}

/**
 * The run's database server when a workload wants a streaming replica: a primary and one replica
 * started here, with the embedded package's binaries as the default run's server (the machine's
 * when those are missing), fsync on, 200 connections and pg_stat_statements as that server has.
 * The replica's processes are not the primary's: the run's CPU figures for PostgreSQL stay the
 * primary's alone.
 */
export async function startBenchReplication() {
  const cluster = await startReplicatedCluster({
    prefer: 'embedded',
    settings: { fsync: 'on', max_connections: '200', shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' },
  });
  return {
    primaryUrl: cluster.primaryUrl,
    description: `a PostgreSQL primary with a streaming replica, both its own (${cluster.version.replace(/^postgres \(PostgreSQL\) /, 'PostgreSQL ')})`,
    /** The replica of one database of the primary. */
    replicaOf(databaseUrl: string) {
      const url = new URL(cluster.replicaUrls[0]!);
      url.pathname = new URL(databaseUrl).pathname;
      return { url: url.toString(), pid: () => cluster.replicaPid(0) };
    },
    stop: () => cluster.stop(),
  };
}
