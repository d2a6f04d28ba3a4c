import { performance } from 'node:perf_hooks';
import type { ChildMessage, Sample, Shape } from './protocol.ts';

/** One answered attempt; `kind` as in Sample: 1 an order, 2 a cancellation, 0 anything else. */
export interface Attempt {
  readonly status: number;
  readonly code: string;
  readonly kind: Sample[4];
}

const tell = (m: ChildMessage) => process.send!(m);

/**
 * Runs `connections` workers that each send the next request as soon as the previous one is
 * answered, as a pool of keep-alive clients does. A timed shape measures the window after the
 * warm-up; a counted one every attempt. The window's edges go to the orchestrator as they pass.
 */
export async function closedLoop(shape: Shape, connections: number, attempt: (index: number) => Promise<Attempt>) {
  const samples: Sample[] = [];
  let failures = 0;
  let started = 0;
  const timed = shape.kind === 'timed';
  let windowStart = performance.now() + (timed ? shape.warmupMs : 0);
  const end = timed ? windowStart + shape.durationMs : Number.POSITIVE_INFINITY;
  const total = timed ? shape.durationMs : shape.attempts;
  const more = () => (timed ? performance.now() < end : started < shape.attempts);

  const progress = setInterval(() => {
    const now = performance.now();
    if (!timed) tell({ type: 'progress', done: samples.length, total, phase: 'measuring' });
    else if (now < windowStart) tell({ type: 'progress', done: 0, total, phase: 'warming up' });
    else tell({ type: 'progress', done: Math.min(total, Math.round(now - windowStart)), total, phase: 'measuring' });
  }, 200);
  const worker = async () => {
    while (more()) {
      const index = started++;
      const t0 = performance.now();
      let outcome: Attempt;
      try {
        outcome = await attempt(index);
      } catch (err) {
        failures++;
        outcome = { status: 0, code: (err as { code?: string }).code ?? 'TRANSPORT', kind: 0 };
      }
      const t1 = performance.now();
      if (t0 >= windowStart && t1 <= end) samples.push([t0 - windowStart, t1 - t0, outcome.status, outcome.code, outcome.kind]);
    }
  };
  const edges: NodeJS.Timeout[] = [];
  if (!timed) {
    windowStart = performance.now();
    tell({ type: 'edge', edge: 'start' });
  } else {
    edges.push(setTimeout(() => tell({ type: 'edge', edge: 'start' }), Math.max(0, windowStart - performance.now())));
    edges.push(setTimeout(() => tell({ type: 'edge', edge: 'end' }), Math.max(0, end - performance.now())));
  }
  const t = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  if (!timed) tell({ type: 'edge', edge: 'end' });
  edges.forEach(clearTimeout);
  clearInterval(progress);
  tell({ type: 'progress', done: total, total, phase: 'done' });
  return { samples, windowMs: timed ? shape.durationMs : performance.now() - t, transportErrors: failures };
}
