import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CeilingPlan, EdgeMessage, LoadPlan, LoadResult, Progress, WindowEdge } from './protocol.ts';

/** Draws one progress line on stderr (a bar on a terminal, a line every few seconds otherwise). */
export function progressBar(label: string): (done: number, total: number, phase: string) => void {
  let lastPlain = 0;
  return (done, total, phase) => {
    const share = total > 0 ? Math.min(1, done / total) : 0;
    if (process.stderr.isTTY) {
      const width = 30;
      const bar = '█'.repeat(Math.round(share * width)).padEnd(width, '░');
      process.stderr.write(`\r  ${label.padEnd(34)} ${bar} ${(share * 100).toFixed(0).padStart(3)}%  ${phase.padEnd(11)}`);
      if (phase === 'done') process.stderr.write('\n');
    } else if (Date.now() - lastPlain > 5_000 || phase === 'done') {
      lastPlain = Date.now();
      process.stderr.write(`  ${label}: ${(share * 100).toFixed(0)}% ${phase}\n`);
    }
  };
}

/**
 * Runs one load or ceiling plan in its own process and returns its samples. `onEdge` hears when
 * the measured window opens and closes, with the child's pid (its CPU is the load generator's).
 */
export function runInChild(
  file: 'load-process.ts' | 'ceiling-process.ts',
  plan: LoadPlan | CeilingPlan,
  label: string,
  onEdge: (edge: WindowEdge, pid: number) => void = () => undefined,
): Promise<LoadResult> {
  const onProgress = progressBar(label);
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), {
    execArgv: ['--disable-warning=ExperimentalWarning'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  return new Promise((resolve, reject) => {
    let result: LoadResult | null = null;
    child.on('message', (m: Progress | EdgeMessage | { type: 'result'; result: LoadResult }) => {
      if (m.type === 'progress') onProgress(m.done, m.total, m.phase);
      else if (m.type === 'edge') onEdge(m.edge, child.pid!);
      else result = m.result;
    });
    child.once('exit', (code) => (result ? resolve(result) : reject(new Error(`${file} exited with ${code}`))));
    child.send(plan);
  });
}
