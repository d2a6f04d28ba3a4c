import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The run the issue asks to record; a shorter one is a rehearsal and only prints its report. */
export const FULL_MINUTES = 30;
export const DEFAULT_REPORT = path.join(REPO_ROOT, 'docs/reliability.md');

export interface Options {
  readonly minutes: number;
  /** Requests per second the load aims at, both instances together (retries and replays on top). */
  readonly rate: number;
  /** Where the Markdown report goes; null: printed only. */
  readonly out: string | null;
  /**
   * The load's minute at which the run's clocks pass a UTC midnight, with the retained history
   * seeded first (clock-shift.ts); null: real clocks and empty tables.
   */
  readonly midnightMinute: number | null;
}

const USAGE = `pnpm soak [--minutes N] [--rate R] [--midnight M|none] [--out FILE]
  --minutes N  length of the mixed load, faults spaced over it (default ${FULL_MINUTES}, at least 1)
  --rate R     requests per second aimed at, over both instances (default 100)
  --midnight M the load's minute at which UTC midnight falls, when whole days of idempotency
               keys and delivered events leave (default: 16 of 30, scaled, for runs of 7 minutes or more;
               at least 6 minutes before the end, the purge's interval). Every process runs with its clock shifted
               (libfaketime: apt-get install faketime), and the days retention keeps are seeded
               first at the run's rate. none: real clocks, empty tables
  --out FILE   write the Markdown report there; by default a ${FULL_MINUTES}-minute run writes
               docs/reliability.md and a shorter one only prints it`;

export function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      minutes: { type: 'string' }, rate: { type: 'string' }, midnight: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const number = (raw: string | undefined, fallback: number, min: number, max: number, name: string) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got "${raw}"\n${USAGE}`);
    return n;
  };
  const minutes = number(values.minutes, FULL_MINUTES, 1, 24 * 60, 'minutes');
  const rate = number(values.rate, 100, 1, 2_000, 'rate');
  const out = values.out !== undefined ? path.resolve(values.out) : minutes >= FULL_MINUTES ? DEFAULT_REPORT : null;
  // The purge passes every 5 minutes: midnight must leave it a pass before the load ends.
  const latest = minutes - 6;
  const midnightMinute = values.midnight === 'none' || (values.midnight === undefined && latest < 1)
    ? null
    : number(values.midnight, Math.min(latest, (minutes * 16) / 30), 0.5, latest, 'midnight');
  return { minutes, rate, out, midnightMinute };
}
