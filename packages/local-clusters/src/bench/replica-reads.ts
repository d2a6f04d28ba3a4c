import { signToken } from '@shop/adapters-http';
import { addCoupon, grantCoupon } from '@shop/adapters-postgres/bench';
import { eventually } from '../eventually.ts';
import { MS_PER_TICK, treeTicks } from '../process-cpu.ts';
import { fmt } from './deliveries.ts';
import type { RunLike, ScalingTarget } from './target.ts';

/**
 * mixed-replica: mixed's load again, the service started with DATABASE_READ_URL on a streaming
 * replica of the run's database, so the catalog (70 % of mixed) is read there. Both it and the run
 * it is set against, mixed-uncached (mixed on the primary alone), run without the product cache
 * (PRODUCT_CACHE_MS=0, ADR 0015), which would answer most catalog reads from memory and leave
 * little for either database: what they compare is where the reads go. Between the
 * window's edges it counts, from the service's own metrics, the requests it answered and where
 * each catalog read went (db_replica_reads_total{on}); and the replica's CPU (its postmaster and
 * every process under it). The run's PostgreSQL CPU stays the primary's alone.
 */
export interface ReplicaReads {
  /** Requests the service answered in the window (its http_request_duration_seconds_count). */
  readonly requests: number;
  /** Catalog reads served by the replica, and by the primary (no replica close enough, or it failed). */
  readonly onReplica: number;
  readonly onPrimary: number;
  /** onReplica ÷ requests. */
  readonly shareOfRequests: number;
  /** The replica's CPU in the window, ms; null when it runs elsewhere. */
  readonly replicaCpuMs: number | null;
  readonly replicaProcesses: number;
}

type Counts = { replica: number; primary: number; requests: number; healthy: boolean };
type Mark = Counts & { replicaTicks: number | null; processes: number };
type State = { readonly t: ScalingTarget; readonly token: string; readonly marks: Array<Promise<Mark>> };

/** The service's /metrics (`token`: an admin's, signed with the run's secret), the counters these figures need, summed over their labels. */
async function serviceCounts(t: ScalingTarget, token: string): Promise<Counts> {
  const res = await fetch(`${t.baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  const lines = (await res.text()).split('\n');
  const sum = (prefix: string) => lines.filter((l) => l.startsWith(prefix)).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  return {
    replica: sum('db_replica_reads_total{on="replica"}'), primary: sum('db_replica_reads_total{on="primary"}'),
    requests: sum('http_request_duration_seconds_count'), healthy: sum('db_replica_healthy{replica="0"}') === 1,
  };
}

const mark = async (t: ScalingTarget, token: string): Promise<Mark> => {
  const tree = treeTicks(t.replica?.pid() ?? null);
  return { ...(await serviceCounts(t, token)), replicaTicks: tree?.ticks ?? null, processes: tree?.processes ?? 0 };
};

const ms = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(3));
const postgresPerRequest = (r: RunLike | undefined) => (r?.cost?.cpu.postgresMs == null ? null : r.cost.cpu.postgresMs / r.summary.requests);

const UNCACHED = { PRODUCT_CACHE_MS: '0' };
type MixedFixture = { mixedCouponId: number; couponHolders: readonly number[] };

/** mixed's coupon orders spent their holders' copies: a coupon of its own, as mixed's, to the same holders, so that its orders are mixed's. */
async function freshMixedCoupon(t: ScalingTarget, f: MixedFixture, name: string): Promise<void> {
  f.mixedCouponId = await addCoupon(t.pool, `${name} 10%`, Math.max(1, f.couponHolders.length), { type: 'RATE', value: 10 });
  await grantCoupon(t.pool, f.mixedCouponId, f.couponHolders);
}

/** mixed-uncached: mixed on the primary alone without the product cache, what mixed-replica is set against. */
export const mixedUncachedWorkload = {
  async before(t: ScalingTarget, f: MixedFixture): Promise<void> {
    await freshMixedCoupon(t, f, 'mixed-uncached');
    await t.restart(UNCACHED);
  },
  after: async (_: unknown, t: ScalingTarget): Promise<Record<string, never>> => (await t.restart({}), {}),
};

/** The workload's hooks (apps/bench/src/workloads.ts). */
export const replicaReadsWorkload = {
  async before(t: ScalingTarget, f: MixedFixture): Promise<State> {
    if (!t.replica) throw new Error('mixed-replica needs the streaming replica the benchmark starts (not with --url)');
    await freshMixedCoupon(t, f, 'mixed-replica');
    await t.restart({ DATABASE_READ_URL: t.replica.url, ...UNCACHED });
    const token = await signToken(new TextEncoder().encode(t.authSecret), { admin: true });
    await eventually(async () => (await serviceCounts(t, token)).healthy, 'the service to find its replica close enough to read from', 30_000, 100);
    return { t, token, marks: [] };
  },
  /** At each edge of the measured window: its counters read (resolves once they are; the benchmark does not wait). */
  edge(state: unknown): Promise<void> {
    const s = state as State;
    const taken = mark(s.t, s.token);
    s.marks.push(taken);
    return taken.then(() => undefined, () => undefined); // a failure is reported by after()
  },
  async after(state: unknown): Promise<{ replicaReads: ReplicaReads }> {
    const s = state as State;
    const [a, b] = await Promise.all(s.marks).finally(() => s.t.restart({})); // the workloads after it read on the primary alone
    if (!a || !b) throw new Error('mixed-replica: the measured window never closed');
    const [requests, onReplica] = [b.requests - a.requests, b.replica - a.replica];
    const replicaCpuMs = a.replicaTicks === null || b.replicaTicks === null ? null : (b.replicaTicks - a.replicaTicks) * MS_PER_TICK;
    return { replicaReads: { requests, onReplica, onPrimary: b.primary - a.primary, shareOfRequests: requests ? onReplica / requests : 0,
      replicaCpuMs, replicaProcesses: b.processes } };
  },
  /** With a replica, at least half of mixed's requests are read there: the catalog is 70 % of them. */
  check({ run }: { run: RunLike & { replicaReads?: ReplicaReads } }): string[] {
    const r = run.replicaReads;
    if (!r) return ['mixed-replica: no figures of reads on the replica'];
    return r.shareOfRequests >= 0.5 ? [] : [`mixed-replica: ${fmt(r.onReplica)} of ${fmt(r.requests)} requests read on the replica ` +
      `(${(r.shareOfRequests * 100).toFixed(1)} %), fewer than half; ${fmt(r.onPrimary)} catalog reads on the primary`];
  },
  /** Its line in the report's Targets, set against mixed-uncached's run (the primary alone, no product cache either) when there is one. */
  target(run: RunLike & { replicaReads?: ReplicaReads }, runs: readonly RunLike[]): string {
    const [r, m] = [run.replicaReads!, runs.find((x) => x.workload === 'mixed-uncached' && x.runner === 'service')];
    const [p, pm, replica] = [postgresPerRequest(run), postgresPerRequest(m), r.replicaCpuMs === null ? null : r.replicaCpuMs / run.summary.requests];
    const change = p !== null && pm ? ` (${p <= pm ? '−' : '+'}${(Math.abs(p / pm - 1) * 100).toFixed(1)} %)` : '';
    return `mixed-replica (catalog reads on a streaming replica): ${fmt(run.summary.requestsPerSecond)} requests/s` +
      `${m ? ` vs ${fmt(m.summary.requestsPerSecond)} with mixed-uncached on the primary alone` : ' (run mixed-uncached too to compare)'}; the primary's CPU per request ` +
      `**${ms(p)} ms**${m ? ` vs ${ms(pm)} ms${change}` : ''}, the replica's ${ms(replica)} ms; ` +
      `read on the replica: **${fmt(r.onReplica)} of ${fmt(r.requests)} requests (${(r.shareOfRequests * 100).toFixed(1)} %)**, ` +
      `${fmt(r.onPrimary)} catalog reads on the primary (db_replica_reads_total, the window's edges)`;
  },
};
