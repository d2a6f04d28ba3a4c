import { mkdir, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { quantile } from './run/stats.ts';
import { benchDatabase } from './run/target.ts';

export async function msOf(f: () => Promise<unknown>): Promise<number> {
  const s = performance.now();
  await f();
  return performance.now() - s;
}

/** Nearest-rank percentiles of some timings (ms). */
export function timings(times: number[]) {
  const sorted = times.sort((a, b) => a - b);
  return { n: sorted.length, p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0 };
}

/** What bench:top and bench:coupon share: a fresh database, their Markdown on stdout, their JSON in bench/results/<date>/. */
export async function narrowBench(file: string, run: (bench: Awaited<ReturnType<typeof benchDatabase>>) => Promise<{ lines: string[]; json: unknown }>) {
  const bench = await benchDatabase();
  try {
    const { lines, json } = await run(bench);
    process.stdout.write(`${lines.join('\n')}\n`);
    const dir = new URL(`../../../bench/results/${new Date().toISOString().slice(0, 10)}/`, import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL(file, dir), JSON.stringify(json, null, 2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await bench.close();
  }
}
