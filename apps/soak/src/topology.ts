import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '@shop/adapters-postgres';
import { findNatsServer, freePort } from '@shop/local-clusters';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';
import { EVENT_RETENTION_DAYS } from './history.ts';
import { startNatsNode, type NatsNode } from './nats-node.ts';

/**
 * What the soak runs against, all of it its own: an embedded PostgreSQL on a fresh data directory,
 * one nats-server with JetStream as the data platform, and two API processes sharing them.
 */

/**
 * The instances' settings beyond the defaults. Retention cannot be shortened to fit a run:
 * OUTBOX_RETENTION_DAYS is at least 1 day and idempotency keys are kept 48 hours (a constant), so
 * it is set to its minimum, and the run crosses a midnight instead (clock-shift.ts). The relay's retry cap and lease
 * are shortened so that the backlog of an outage, and the records a killed instance held, are
 * delivered within seconds of the fault's end rather than a minute.
 */
export const SERVICE_SETTINGS = {
  OUTBOX_RETENTION_DAYS: String(EVENT_RETENTION_DAYS),
  DATA_PLATFORM_TIMEOUT_MS: '2000',
  OUTBOX_RETRY_MAX_MS: '5000',
  OUTBOX_LEASE_MS: '10000',
  OUTBOX_POLL_MS: '500',
  // One client address and one token per user: the per-address limits and the per-user rate would
  // measure themselves (startApiProcess turns them off; said here so that the report shows it).
  RATE_LIMIT_IP_PER_SEC: '0',
  RATE_LIMIT_USER_PER_SEC: '0',
  MAX_CONNECTIONS_PER_ADDRESS: '0',
} as const;

export interface ApiSlot {
  readonly name: 'A' | 'B';
  readonly url: string;
  /** The running process; null while it is down (killed, not yet restarted). */
  process: ApiProcess | null;
  /** Every pid it has had, in order (a restart is a new one). */
  readonly pids: number[];
  /** Error and fatal log lines seen, over every process of the slot. */
  errorLines: number;
  readonly errorExamples: string[];
}

export interface Database {
  url: string;
  readonly port: number;
  readonly dir: string;
  /** What PostgreSQL printed, trimmed to the last lines. */
  readonly log: string[];
  /** How many of its starts ran crash recovery. */
  recoveries: number;
  crash(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type Topology = Awaited<ReturnType<typeof startTopology>>;

export async function startTopology(tmp: string, onStep: (what: string) => void) {
  const bin = findNatsServer();
  if (!bin) throw new Error('nats-server not found (NATS_SERVER_BIN, the PATH, /usr/sbin, /usr/local/bin)');
  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };
  try {
    onStep('starting PostgreSQL (embedded, fresh data directory)');
    const database = await embeddedDatabase(path.join(tmp, 'postgres'));
    stops.push(() => database.stop());
    onStep('starting nats-server with JetStream');
    const nats = await startNatsNode(bin, path.join(tmp, 'nats'));
    stops.push(() => nats.stop());

    const authSecret = randomBytes(32).toString('base64url');
    const env = { ...SERVICE_SETTINGS, AUTH_SECRET: authSecret, DATA_PLATFORM_URL: nats.url, LOG_LEVEL: 'info' };
    const slots: ApiSlot[] = [];
    for (const name of ['A', 'B'] as const) {
      const port = await freePort();
      slots.push({ name, url: `http://127.0.0.1:${port}`, process: null, pids: [], errorLines: 0, errorExamples: [] });
    }
    const startSlot = async (slot: ApiSlot) => {
      const started = await startApiProcess(database.url, { ...env, PORT: new URL(slot.url).port });
      slot.process = started;
      slot.pids.push(started.child.pid!);
      countErrors(slot, started);
    };
    stops.push(async () => {
      for (const slot of slots) await slot.process?.stop('SIGKILL');
    });
    onStep('starting API instances A and B');
    await Promise.all(slots.map(startSlot));

    const trim = setInterval(() => slots.forEach((slot) => trimOutput(slot.process)), 5_000);
    stops.push(async () => clearInterval(trim));

    return {
      database,
      nats,
      slots,
      authSecret,
      env,
      /** SIGKILL: no shutdown at all. Resolves once it is gone. */
      async kill(slot: ApiSlot) {
        const proc = slot.process!;
        slot.process = null;
        await proc.stop('SIGKILL');
      },
      restart: startSlot,
      /** SIGTERM to both instances; their exit codes. */
      async stopInstances(): Promise<Array<number | null>> {
        return Promise.all(
          slots.map(async (slot) => {
            const proc = slot.process;
            if (!proc) return null;
            const code = await proc.stop('SIGTERM');
            slot.process = null;
            return code;
          }),
        );
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** startApiProcess keeps every line an instance prints: the last ones are enough. */
function trimOutput(proc: ApiProcess | null): void {
  if (proc && proc.output.length > 200) proc.output.splice(0, proc.output.length - 200);
}

/** Counts the error and fatal lines an instance logs, with a few examples for the report. */
function countErrors(slot: ApiSlot, proc: ApiProcess): void {
  createInterface({ input: proc.child.stdout! }).on('line', (line) => {
    if (!/"level":(50|60)\b/.test(line)) return;
    slot.errorLines++;
    if (slot.errorExamples.length < 5) slot.errorExamples.push(line.slice(0, 400));
  });
}

async function embeddedDatabase(dir: string): Promise<Database> {
  const log: string[] = [];
  const onLog = (line: string) => {
    log.push(line);
    if (log.length > 300) log.splice(0, log.length - 300);
    if (line.includes('automatic recovery in progress')) database.recoveries++;
  };
  const port = await freePort();
  let current: EmbeddedDatabase = await startEmbeddedPostgres(dir, onLog, { port });
  const database: Database = {
    url: current.url,
    port,
    dir,
    log,
    recoveries: 0,
    crash: () => current.crash(),
    async start() {
      current = await startEmbeddedPostgres(dir, onLog, { port });
      database.url = current.url;
    },
    stop: () => current.stop(),
  };
  return database;
}
