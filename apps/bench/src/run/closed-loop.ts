import { performance } from 'node:perf_hooks';
import { CANCEL, ORDER, type Sample, type Shape, type WindowEdge } from './protocol.ts';

export interface Attempt {
  readonly status: number;
  readonly code: string;
  readonly isOrder: boolean;
  /** A cancellation (POST /orders/{orderId}/cancel): the refund workload's other kind of request. */
  readonly isCancel?: boolean;
}

/**
 * Runs `connections` workers that each send the next request as soon as the previous one is
 * answered (a closed loop, as a pool of keep-alive clients behaves). A timed shape measures only
 * the window after the warm-up; a counted shape measures every attempt.
 */
export async function closedLoop(
  shape: Shape,
  connections: number,
  attempt: (index: number) => Promise<Attempt>,
  onProgress: (done: number, total: number, phase: string) => void,
  /** Called at the measured window's opening and close, for whoever samples CPU at its edges. */
  onEdge: (edge: WindowEdge) => void = () => undefined,
): Promise<{ samples: Sample[]; windowMs: number; failures: number }> {
  const samples: Sample[] = [];
  let failures = 0;
  let started = 0;
  let windowStart = performance.now() + (shape.kind === 'timed' ? shape.warmupMs : 0);
  const end = shape.kind === 'timed' ? windowStart + shape.durationMs : Number.POSITIVE_INFINITY;
  const total = shape.kind === 'timed' ? shape.durationMs : shape.attempts;
  const more = () => (shape.kind === 'timed' ? performance.now() < end : started < shape.attempts);

  const progress = setInterval(() => {
    const now = performance.now();
    if (shape.kind === 'count') onProgress(samples.length, total, 'measuring');
    else if (now < windowStart) onProgress(0, total, 'warming up');
    else onProgress(Math.min(total, Math.round(now - windowStart)), total, 'measuring');
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
        outcome = { status: 0, code: (err as { code?: string }).code ?? 'TRANSPORT', isOrder: false };
      }
      const t1 = performance.now();
      if (t0 >= windowStart && t1 <= end) {
        samples.push([t0 - windowStart, t1 - t0, outcome.status, outcome.code, outcome.isOrder ? ORDER : outcome.isCancel ? CANCEL : 0]);
      }
    }
  };
  const edges: NodeJS.Timeout[] = [];
  if (shape.kind === 'count') {
    windowStart = performance.now();
    onEdge('start');
  } else {
    edges.push(setTimeout(() => onEdge('start'), Math.max(0, windowStart - performance.now())));
    edges.push(setTimeout(() => onEdge('end'), Math.max(0, end - performance.now())));
  }
  const t = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  if (shape.kind === 'count') onEdge('end');
  edges.forEach(clearTimeout);
  clearInterval(progress);
  const windowMs = shape.kind === 'timed' ? shape.durationMs : performance.now() - t;
  onProgress(total, total, 'done');
  return { samples, windowMs, failures };
}
