import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CeilingPlan, ChildMessage, LoadPlan, LoadResult } from './protocol.ts';

/** One progress line on stderr: a bar on a terminal, a line every few seconds otherwise. */
export function progressBar(label: string): (done: number, total: number, phase: string) => void {
  let lastPlain = 0;
  return (done, total, phase) => {
    const share = total > 0 ? Math.min(1, done / total) : 0;
    if (process.stderr.isTTY) {
      const bar = '█'.repeat(Math.round(share * 30)).padEnd(30, '░');
      process.stderr.write(`\r  ${label.padEnd(34)} ${bar} ${(share * 100).toFixed(0).padStart(3)}%  ${phase.padEnd(11)}`);
      if (phase === 'done') process.stderr.write('\n');
    } else if (Date.now() - lastPlain > 5_000 || phase === 'done') {
      lastPlain = Date.now();
      process.stderr.write(`  ${label}: ${(share * 100).toFixed(0)}% ${phase}\n`);
    }
  };
}

/**
 * Runs a load or ceiling plan in its own process (its CPU is the load generator's, not the
 * service's) and returns its samples; `onEdge` hears the measured window open and close.
 */
export function runInChild(plan: LoadPlan | CeilingPlan, label: string, onEdge: (edge: 'start' | 'end', pid: number) => void): Promise<LoadResult> {
  const onProgress = progressBar(label);
  const file = plan.kind === 'load' ? 'load-process.ts' : 'ceiling-process.ts';
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), {
    execArgv: ['--disable-warning=ExperimentalWarning'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  return new Promise((resolve, reject) => {
    let result: LoadResult | null = null;
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'progress') onProgress(m.done, m.total, m.phase);
      else if (m.type === 'edge') onEdge(m.edge, child.pid!);
      else result = m.result;
    });
    child.once('exit', (code) => (result ? resolve(result) : reject(new Error(`${file} exited with ${code}`))));
    child.send(plan);
  });
}

/** The child's side: one plan in, one result out, then exit. */
export function serveOnePlan<P>(name: string, run: (plan: P) => Promise<LoadResult>): void {
  process.once('message', (plan: P) => {
    run(plan).then(
      (result) => process.send!({ type: 'result', result } satisfies ChildMessage, () => process.exit(0)),
      (err) => {
        process.stderr.write(`${name} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
