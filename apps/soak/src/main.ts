import { chmodSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { makeTempDir, removeTempDir } from '@shop/local-clusters';
import { judge } from './checks.ts';
import { runShifted, shiftedClock } from './clock-shift.ts';
import { setupEstimateMs } from './history.ts';
import { FULL_MINUTES, parseOptions, type Options } from './options.ts';
import { renderReport } from './report.ts';
import { runSoak } from './run.ts';

/**
 * `pnpm soak`: the service under a long mixed load with faults injected in turn, then every
 * invariant checked (see report.ts for what it does, and docs/reliability.md for the recorded run).
 * Exits 0 only if every check holds; whatever happens, nothing it started is left running.
 */
const say = (line: string) => process.stderr.write(`${line}\n`);

let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  say((err as Error).message);
  process.exit(2);
}

// A run that crosses midnight runs again as a child whose clocks are shifted (clock-shift.ts).
if (options.midnightMinute !== null && !shiftedClock()) {
  try {
    process.exit(await runShifted(setupEstimateMs(options.rate), options.midnightMinute, say));
  } catch (err) {
    say((err as Error).message);
    process.exit(2);
  }
}

const tmp = makeTempDir('order-service-soak-');
// As root the embedded PostgreSQL runs as the postgres user, which must reach its directory inside.
if (process.getuid?.() === 0) chmodSync(tmp, 0o755);
const stops: Array<() => Promise<void>> = [];
const abort = new AbortController();
let interrupted: string | null = null;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return; // already stopping everything
    interrupted = signal;
    say(`${signal}: stopping the load, the instances, nats-server and PostgreSQL`);
    abort.abort(new Error(`interrupted by ${signal}`));
  });
}

let code = 1;
try {
  const result = await runSoak(options, tmp, abort.signal, say, (stop) => stops.push(stop));
  const checks = judge(result);
  const report = renderReport(result, checks);
  process.stdout.write(`${report}\n`);
  if (options.out) {
    await writeFile(options.out, report);
    say(`report written to ${options.out}`);
  } else {
    say(`(a run shorter than ${FULL_MINUTES} minutes only prints its report; --out FILE writes it)`);
  }
  for (const c of checks.filter((c) => !c.ok)) say(`FAILED: ${c.name}: ${c.detail}`);
  code = checks.every((c) => c.ok) ? 0 : 1;
} catch (err) {
  say(interrupted ? `soak interrupted (${interrupted})` : `soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  code = interrupted ? 130 : 1;
} finally {
  for (const stop of stops.reverse()) await stop().catch((err) => say(`cleanup step failed: ${(err as Error).message}`));
  await removeTempDir(tmp).catch(() => undefined);
}
process.exit(code);
