/**
 * When things happen in a run of `minutes`: the 30-minute plan of the issue (database crash at
 * minute 4, a 5-minute platform outage from minute 9, NATS restart at 18, one instance SIGKILLed at
 * 23), every time scaled by minutes / 30, and each outage kept short enough for a short run.
 */
export type FaultKind = 'database-restart' | 'platform-outage' | 'nats-restart' | 'instance-kill';

export interface FaultPlan {
  readonly kind: FaultKind;
  /** From the start of the load. */
  readonly atMs: number;
  /** How long the thing stays down before it is started again. */
  readonly downMs: number;
  readonly what: string;
}

export interface Timeline {
  readonly totalMs: number;
  readonly faults: readonly FaultPlan[];
  /**
   * The RSS baseline: the 5th minute, past the start's warm-up (V8 sizes its heap over the first
   * minute or two of load, some 50 MiB, then RSS stays flat), or the middle of a run shorter than
   * 10 minutes. Not scaled like the faults: warm-up takes as long in a short run as in a long one.
   */
  readonly baselineAtMs: number;
  /**
   * RSS is compared as the mean over this long from the baseline and over the run's last stretch
   * as long (5 minutes of 30): V8 gives memory back and takes it again by tens of MiB over minutes,
   * and one sample can fall on either.
   */
  readonly rssWindowMs: number;
  readonly sampleEveryMs: number;
  /** After a fault is over, how long its answers still count as the fault's. */
  readonly settleMs: number;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export function timeline(minutes: number): Timeline {
  const totalMs = Math.round(minutes * 60_000);
  const at = (minute: number) => Math.round((minute / 30) * totalMs);
  return {
    totalMs,
    baselineAtMs: Math.min(5 * 60_000, totalMs / 2),
    rssWindowMs: Math.round(totalMs / 6),
    sampleEveryMs: clamp(Math.round(60_000 * (minutes / 30)), 5_000, 60_000),
    settleMs: clamp(Math.round(totalMs / 60), 5_000, 15_000),
    faults: [
      {
        kind: 'database-restart', atMs: at(4), downMs: clamp(totalMs / 20, 3_000, 10_000),
        what: 'PostgreSQL crashed (SIGQUIT to the postmaster: immediate stop, crash recovery at the next start), started again on the same port and data directory',
      },
      { kind: 'platform-outage', atMs: at(9), downMs: at(5), what: 'nats-server (the data platform) stopped, then started again on the same store' },
      { kind: 'nats-restart', atMs: at(18), downMs: 1_000, what: 'nats-server stopped and started again at once' },
      {
        kind: 'instance-kill', atMs: at(23), downMs: Math.min(20_000, totalMs / 10),
        what: 'API instance B SIGKILLed mid-load, started again on the same port',
      },
    ],
  };
}
