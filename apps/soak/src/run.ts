import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { signToken } from '@shop/adapters-http';
import { auditInvariants, openDatabase } from '@shop/adapters-postgres';
import { removeRetainedHistory, retainedDays, type SeededDay } from '@shop/adapters-postgres/bench';
import { shiftedClock } from './clock-shift.ts';
import { inject, type FaultRecord } from './faults.ts';
import { seed, USERS, PRODUCTS, COUPON_COPIES } from './fixture.ts';
import { seedHistory } from './history.ts';
import { Load } from './load.ts';
import type { Options } from './options.ts';
import { reconcile, type Reconciliation } from './reconcile.ts';
import { Sampler, scrapeMetrics, tableSizes, type RssSample, type TableSizes } from './samples.ts';
import { checkStream, type StreamCheck } from './stream.ts';
import { timeline, type Timeline } from './timeline.ts';
import { startTopology, type Topology } from './topology.ts';

/** How long the end waits for every event to be delivered. */
const DELIVERY_WAIT_MS = 600_000;

export interface RunResult {
  readonly options: Options;
  readonly timeline: Timeline;
  readonly startedAt: Date;
  readonly loadMs: number;
  readonly machine: { cpus: string; memory: string; os: string; loadStart: number[]; loadEnd: number[] };
  readonly versions: { node: string; postgres: string; nats: string };
  readonly settings: Record<string, string>;
  readonly fixture: { users: number; products: number; couponCopies: number };
  readonly load: Load;
  readonly faults: FaultRecord[];
  readonly delivery: { waitedMs: number; undelivered: number };
  readonly stream: StreamCheck;
  readonly audit: string[];
  readonly reconciliation: Reconciliation;
  readonly rss: Map<string, RssSample[]>;
  readonly tables: { start: TableSizes; end: TableSizes; series: TableSizes[] };
  /** The run across a midnight (clock-shift.ts): its shift, the seeded days, each day partition at the start and the end. */
  readonly history: History | null;
  readonly metrics: Map<string, Map<string, number> | string>;
  readonly exitCodes: Record<string, number | null>;
  readonly errorLines: Record<string, { count: number; examples: string[] }>;
}

export interface History {
  readonly shiftMs: number;
  readonly midnight: Date;
  /** From the start of the load. */
  readonly midnightAtMs: number;
  readonly seeded: SeededDay[];
  readonly seedMs: number;
  readonly daysAtStart: Awaited<ReturnType<typeof retainedDays>>;
  daysAtEnd: Awaited<ReturnType<typeof retainedDays>>;
  /** When daysAtEnd was read (the shifted clock). */
  endAt: Date;
  /** Seeded events taken out before the checks (they belong to no order). */
  removedEvents: number;
}

/** How far this process's clock is from the real one (a child without libfaketime reads it). */
function measuredShiftMs(): number {
  const { LD_PRELOAD: _, ...env } = process.env;
  const real = Number(execFileSync('date', ['+%s%3N'], { env, encoding: 'utf8' }).trim());
  return Date.now() - real;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

/**
 * The whole run: topology up, data seeded, the load with its faults in turn, then the end's
 * checks. `track` receives each started thing's stop, so that an interrupted run leaves nothing
 * running.
 */
export async function runSoak(options: Options, tmp: string, signal: AbortSignal, say: (line: string) => void, track: (stop: () => Promise<void>) => void): Promise<RunResult> {
  const plan = timeline(options.minutes);
  const startedAt = new Date();
  const loadStart = os.loadavg();
  const topology: Topology = await startTopology(tmp, say);
  track(() => topology.close());
  signal.throwIfAborted();
  // bigint read as numbers, and connections that die with the database crash replaced, as the service's.
  const db = openDatabase({ connectionString: topology.database.url, max: 2, applicationName: 'order-service-soak' });
  track(() => db.close());
  const pool = db.pool;
  const postgres = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;

  say('seeding users, products and a coupon through the admin API');
  const { fixture, initialStock } = await seed(topology.slots[0]!.url, topology.authSecret);
  signal.throwIfAborted();
  const clock = shiftedClock();
  let history: Omit<History, 'midnightAtMs' | 'daysAtStart'> | null = null;
  if (clock) {
    const measured = measuredShiftMs();
    if (Math.abs(measured - clock.shiftMs) > 60_000) throw new Error(`the clock is shifted by ${measured} ms, not ${clock.shiftMs} (libfaketime)`);
    // PostgreSQL's and an instance's clocks, against this one's (all three shifted alike).
    const database = (await pool.query<{ at: Date }>('SELECT now() AS at')).rows[0]!.at.getTime() - Date.now();
    const answered = await fetch(`${topology.slots[0]!.url}/health/live`).then((r) => Date.parse(r.headers.get('date') ?? '') - Date.now(), () => Number.NaN);
    if (!(Math.abs(database) < 60_000 && Math.abs(answered) < 60_000)) {
      throw new Error(`clocks not shifted alike: PostgreSQL ${database} ms, instance A ${answered} ms from the soak's`);
    }
    say('seeding the idempotency keys and delivered events that retention keeps, at the run\'s rate');
    const t = Date.now();
    const seeded = await seedHistory(pool, options.rate, fixture.userIds, say);
    history = { shiftMs: clock.shiftMs, midnight: clock.midnight, seeded, seedMs: Date.now() - t, daysAtEnd: [], endAt: new Date(0), removedEvents: 0 };
    const wait = clock.loadAt.getTime() - Date.now();
    if (wait > 0) say(`waiting ${Math.round(wait / 1000)} s for the planned start, ${clock.loadAt.toISOString()}`);
    await sleep(Math.max(0, wait), signal);
    if (Date.now() > clock.midnight.getTime() - 60_000) throw new Error('setting up took so long that midnight would fall before the load');
  }
  const load = new Load(topology.slots.map((s) => s.url), fixture, options.rate);
  const adminBearer = `Bearer ${await signToken(new TextEncoder().encode(topology.authSecret), { admin: true })}`;
  const sampler = new Sampler(topology.slots, pool, adminBearer);
  const start = await tableSizes(pool, 0, true);
  const daysAtStart = history ? await retainedDays(pool) : [];

  say(`load: ${options.rate} requests/s for ${options.minutes} min, faults at ${plan.faults.map((f) => `${(f.atMs / 60_000).toFixed(1)} min (${f.kind})`).join(', ')}`);
  const t0 = Date.now();
  const run = history && { ...history, midnightAtMs: history.midnight.getTime() - t0, daysAtStart };
  load.start();
  track(() => load.stop({ abandon: true }));
  sampler.start(plan.sampleEveryMs, t0);
  track(async () => sampler.halt());
  const progress = setInterval(() => say(`  ${((Date.now() - t0) / 60_000).toFixed(1)} min: ${load.tally.total} answers, ${load.ordersPlaced} orders, phase ${load.phase}, ${load.inFlight} in flight`), 30_000);
  const background = new Set<Promise<void>>();
  const faults: FaultRecord[] = [];
  try {
    for (const fault of plan.faults) {
      const record = await inject(fault, { topology, load, pool, t0, settleMs: plan.settleMs, signal, background });
      say(`  fault ${fault.kind} at ${(record.startedAtMs / 60_000).toFixed(2)} min: ${record.facts.join('; ')}${record.error ? ` — ${record.error}` : ''}`);
      faults.push(record);
    }
    await sleep(Math.max(0, plan.totalMs - (Date.now() - t0)), signal);
  } finally {
    clearInterval(progress);
  }
  say('load stopping (waiting for the requests in flight)');
  await load.stop();
  const loadMs = Date.now() - t0;
  await sampler.stop();
  const end = await tableSizes(pool, loadMs, true);

  say('waiting until every event is delivered');
  const waitStart = Date.now();
  let undelivered = -1;
  while (Date.now() - waitStart < DELIVERY_WAIT_MS) {
    undelivered = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM outbox_events WHERE delivered_at IS NULL')).rows[0]!.n);
    if (undelivered === 0) break;
    await sleep(500, signal);
  }
  const delivery = { waitedMs: Date.now() - waitStart, undelivered };
  await Promise.all(background);
  if (run) {
    run.endAt = new Date();
    run.daysAtEnd = await retainedDays(pool);
    run.removedEvents = await removeRetainedHistory(pool);
    say(`seeded events taken out before the checks: ${run.removedEvents}`);
  }

  const metrics = new Map<string, Map<string, number> | string>();
  for (const slot of topology.slots) {
    metrics.set(slot.name, await scrapeMetrics(slot.url, adminBearer, ['purge_']).catch((err: Error) => err.message));
  }
  say('reading the stream and checking it against the outbox');
  const stream = await checkStream(topology.nats.url, pool);
  say('auditing the invariants and the clients\' view against the database');
  const audit = await auditInvariants(pool, initialStock);
  const reconciliation = await reconcile(pool, load.ledger, fixture.userIds, fixture.couponId, 1);

  say('stopping the instances (SIGTERM)');
  const codes = await topology.stopInstances();
  const exitCodes = Object.fromEntries(topology.slots.map((s, i) => [s.name, codes[i] ?? null]));
  const errorLines = Object.fromEntries(topology.slots.map((s) => [s.name, { count: s.errorLines, examples: s.errorExamples }]));

  const cpus = os.cpus();
  return {
    options,
    timeline: plan,
    startedAt,
    loadMs,
    machine: {
      cpus: `${cpus.length} × ${cpus[0]?.model ?? 'unknown'}`,
      memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
      os: `${os.type()} ${os.release()} (${os.arch()})`,
      loadStart,
      loadEnd: os.loadavg(),
    },
    versions: { node: process.version, postgres, nats: topology.nats.version },
    settings: { ...topology.env, AUTH_SECRET: '(random, this run)', DATA_PLATFORM_URL: '(this run\'s nats-server)' },
    fixture: { users: USERS, products: PRODUCTS, couponCopies: COUPON_COPIES },
    load,
    faults,
    delivery,
    stream,
    audit,
    reconciliation,
    rss: sampler.rss,
    tables: { start, end, series: sampler.tables },
    history: run,
    metrics,
    exitCodes,
    errorLines,
  };
}
