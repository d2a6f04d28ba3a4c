import { mkdir, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { percentiles } from './run/stats.ts';
import { benchDatabase, type BenchDatabase } from './run/target.ts';

export async function msOf(f: () => Promise<unknown>): Promise<number> {
  const s = performance.now();
  await f();
  return performance.now() - s;
}
export const timings = (times: number[]) => ({ n: times.length, ...percentiles(times) });

/** What bench:top and bench:coupon share: a fresh database, their Markdown on stdout, their JSON in bench/results/<date>/. */
export async function narrowBench(file: string, run: (bench: BenchDatabase) => Promise<{ lines: string[]; json: unknown }>) {
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
