import { mkdir, writeFile } from 'node:fs/promises';
import { benchDatabase } from './run/target.ts';

/** What bench:top and bench:coupon share: a fresh database, percentiles, their JSON in bench/results/<date>/. */

export const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

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
