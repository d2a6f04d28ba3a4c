import type pg from 'pg';
import type { Load } from './load.ts';
import { undeliveredBefore } from './samples.ts';
import type { FaultPlan } from './timeline.ts';
import type { Topology } from './topology.ts';

/** What happened during one fault, for the report. */
export interface FaultRecord {
  readonly plan: FaultPlan;
  /** From the start of the load, as it happened. */
  startedAtMs: number;
  /** When the thing was running again. */
  restoredAtMs: number | null;
  /** When the fault's phase ended (restored + settle): answers until then count as the fault's. */
  phaseEndAtMs: number | null;
  readonly facts: string[];
  /** The fault did not take place as planned (say why). */
  error: string | null;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Injects `plan` at its time, the load going on, and labels the load's answers with it until
 * `settleMs` after the thing came back. Waits, in the background, for what the fault left behind
 * (its backlog of events) to be delivered, as a fact of the record.
 */
export async function inject(
  plan: FaultPlan,
  ctx: { topology: Topology; load: Load; pool: pg.Pool; t0: number; settleMs: number; signal: AbortSignal; background: Set<Promise<void>> },
): Promise<FaultRecord> {
  const { topology, load, pool, t0, signal } = ctx;
  const now = () => Date.now() - t0;
  await sleep(Math.max(0, plan.atMs - now()), signal);
  const record: FaultRecord = { plan, startedAtMs: now(), restoredAtMs: null, phaseEndAtMs: null, facts: [], error: null };
  load.phase = plan.kind;
  const ordersBefore = load.ordersPlaced;
  try {
    switch (plan.kind) {
      case 'database-restart': {
        const { database } = topology;
        const recoveries = database.recoveries;
        await database.crash();
        await sleep(plan.downMs, signal);
        const t = Date.now();
        await database.start();
        record.facts.push(`down ${seconds(Date.now() - t0 - record.startedAtMs)}; started again in ${seconds(Date.now() - t)}`);
        record.facts.push(database.recoveries > recoveries ? 'the start ran crash recovery ("automatic recovery in progress")' : 'NO crash recovery seen in its log');
        if (database.recoveries === recoveries) record.error = 'the restart ran no crash recovery: the crash was not one';
        break;
      }
      case 'platform-outage':
      case 'nats-restart': {
        await topology.nats.stop('SIGTERM');
        await sleep(plan.downMs, signal);
        await topology.nats.start();
        record.facts.push(`nats-server down ${seconds(Date.now() - t0 - record.startedAtMs)}`);
        break;
      }
      case 'instance-kill': {
        const slot = topology.slots[1]!;
        const pid = slot.process?.child.pid;
        await topology.kill(slot);
        await sleep(plan.downMs, signal);
        const t = Date.now();
        await topology.restart(slot);
        record.facts.push(`pid ${pid} SIGKILLed; down ${seconds(Date.now() - t0 - record.startedAtMs)}; pid ${slot.process?.child.pid} ready ${seconds(Date.now() - t)} after its start`);
        break;
      }
    }
  } catch (err) {
    if (signal.aborted) throw err;
    record.error = err instanceof Error ? err.message : String(err);
  }
  record.restoredAtMs = now();
  const restoredAt = new Date();
  record.facts.push(`orders answered 201 while it lasted: ${load.ordersPlaced - ordersBefore}`);
  // Events recorded before the thing came back, still undelivered: the fault's backlog.
  const backlog = await undeliveredBefore(pool, restoredAt).catch(() => null);
  const drained = (async () => {
    if (backlog === null) return;
    const t = Date.now();
    for (;;) {
      const left = await undeliveredBefore(pool, restoredAt).catch(() => null);
      if (left === 0) return void record.facts.push(`its backlog of ${backlog} undelivered events delivered within ${seconds(Date.now() - t)} of the restore`);
      if (signal.aborted || Date.now() - t > 600_000) return void record.facts.push(`its backlog of ${backlog} events: ${left ?? '?'} still undelivered after ${seconds(Date.now() - t)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  ctx.background.add(drained);
  await sleep(ctx.settleMs, signal);
  record.phaseEndAtMs = now();
  load.phase = 'steady';
  return record;
}
