import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';

/**
 * Idempotency keys and delivered events leave their tables a whole UTC day at a time, and only
 * after a day or two of retention, so a 30-minute run started at an arbitrary hour never sees
 * them leave. The soak therefore runs every process it starts (itself, PostgreSQL, the API
 * instances) with the wall clock shifted forward by the same amount (libfaketime, which each child
 * inherits through LD_PRELOAD and FAKETIME), chosen so that a UTC midnight falls at a planned
 * minute of the load. Only the wall clock moves: the monotonic clock, which timers and timeouts
 * use, is left alone (FAKETIME_DONT_FAKE_MONOTONIC), and the offset is constant, so time runs at
 * its real pace. nats-server (Go, which reads the clock without libc) keeps the real time; nothing
 * the soak checks compares its times with the others'.
 */

const LIBRARIES = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'];
const DAY_MS = 86_400_000;

/** Set in the shifted process: when its load should start, on its own (shifted) clock. */
export interface ShiftedClock {
  readonly shiftMs: number;
  /** The planned start of the load: `midnight − midnightMinute`. */
  readonly loadAt: Date;
  readonly midnight: Date;
}

/** The shift this process runs under, if it was started by `runShifted`. */
export function shiftedClock(): ShiftedClock | null {
  const { SOAK_CLOCK_SHIFT_MS: shift, SOAK_LOAD_AT: loadAt, SOAK_MIDNIGHT: midnight } = process.env;
  if (!shift || !loadAt || !midnight) return null;
  return { shiftMs: Number(shift), loadAt: new Date(loadAt), midnight: new Date(midnight) };
}

/**
 * Runs this same command again with every clock shifted so that, if setting up takes `setupMs`,
 * the load starts `midnightMinute` minutes before a UTC midnight; resolves with its exit code.
 * Signals are passed on to it.
 */
export async function runShifted(setupMs: number, midnightMinute: number, say: (line: string) => void): Promise<number> {
  const library = process.env.FAKETIME_LIBRARY ?? LIBRARIES.find((l) => existsSync(l));
  if (!library || !existsSync(library)) {
    throw new Error('libfaketime not found (apt-get install faketime, or FAKETIME_LIBRARY=path); --midnight none runs on real clocks');
  }
  const loadAtReal = Date.now() + setupMs;
  const midnightReal = loadAtReal + midnightMinute * 60_000;
  const midnight = Math.ceil(midnightReal / DAY_MS) * DAY_MS;
  // Whole seconds: libfaketime's offset format.
  const shiftS = Math.round((midnight - midnightReal) / 1000);
  const shiftMs = shiftS * 1000;
  const loadAt = new Date(midnight - midnightMinute * 60_000);
  say(`clocks shifted by +${(shiftS / 3600).toFixed(2)} h: the load planned from ${loadAt.toISOString()} (shifted), UTC midnight at its minute ${midnightMinute}`);
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: {
      ...process.env, LD_PRELOAD: library, FAKETIME: `+${shiftS}s`, FAKETIME_DONT_FAKE_MONOTONIC: '1',
      SOAK_CLOCK_SHIFT_MS: String(shiftMs), SOAK_LOAD_AT: loadAt.toISOString(), SOAK_MIDNIGHT: new Date(midnight).toISOString(),
    },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1))));
}
