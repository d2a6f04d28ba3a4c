import type { RunRecord, Runner } from './report.ts';
import { TWIN } from './report.ts';

/** Two hand-drawn SVG charts, one panel per workload: no chart library for line plots. */

/** Colours far enough apart to tell lines apart (and for the usual colour-blindness). */
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];
const PLOT = { width: 520, height: 250 };
const M = { left: 64, top: 34, bottom: 44, legendGap: 16 };
const LEGEND_ROW = 18;
/** Rough width of a 12 px sans-serif character: generous, so a legend name is never cut. */
const CHAR_PX = 7.2;

type Series = { name: string; points: ReadonlyArray<readonly [number, number]>; color: string; dashed?: boolean };
type Panel = { title: string; series: Series[] };
type Axis = { min: number; max: number; log: boolean; ticks: number[]; format: (v: number) => string };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v)!;
}

/** One panel at vertical offset `y0`. */
function panel(p: Panel, y0: number, xLabel: string, yLabel: string, x: Axis): string[] {
  const ph = Math.max(PLOT.height, p.series.length * LEGEND_ROW + 8);
  const yMax = niceMax(Math.max(0, ...p.series.flatMap((s) => s.points.map((q) => q[1]))));
  const [left, top] = [M.left, y0 + M.top];
  const fx = (v: number) => {
    const t = x.log ? (Math.log10(v) - Math.log10(x.min)) / (Math.log10(x.max) - Math.log10(x.min)) : (v - x.min) / (x.max - x.min || 1);
    return left + Math.max(0, Math.min(1, t)) * PLOT.width;
  };
  const fy = (v: number) => top + ph - (v / yMax) * ph;
  const out = [`<text x="${left}" y="${y0 + 22}" font-size="15" font-weight="600">${esc(p.title)}</text>`];
  for (const v of [0, 1, 2, 3, 4, 5].map((i) => (yMax * i) / 5)) {
    out.push(
      `<line x1="${left}" x2="${left + PLOT.width}" y1="${fy(v)}" y2="${fy(v)}" stroke="#e5e7eb"/>`,
      `<text x="${left - 8}" y="${fy(v) + 4}" text-anchor="end" fill="#374151">${Math.round(v * 100) / 100}</text>`,
    );
  }
  for (const t of x.ticks) {
    out.push(
      `<line x1="${fx(t)}" x2="${fx(t)}" y1="${top}" y2="${top + ph}" stroke="#f3f4f6"/>`,
      `<text x="${fx(t)}" y="${top + ph + 16}" text-anchor="middle" fill="#374151">${x.format(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${PLOT.width}" height="${ph}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${left + PLOT.width / 2}" y="${top + ph + 34}" text-anchor="middle" fill="#111827">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#111827">${esc(yLabel)}</text>`,
  );
  p.series.forEach((s, i) => {
    const d = s.points.map((q, j) => `${j ? 'L' : 'M'}${fx(q[0]).toFixed(1)},${fy(q[1]).toFixed(1)}`).join('');
    const [lx, ly] = [left + PLOT.width + M.legendGap, top + i * LEGEND_ROW + 8];
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  return out;
}

/** Panels stacked in one SVG, all as wide as the widest legend needs. */
function chart(title: string, list: Panel[], xLabel: string, yLabel: string, axisOf: (p: Panel) => Axis): string {
  const legend = Math.ceil(M.legendGap + 30 + CHAR_PX * Math.max(10, ...list.flatMap((p) => p.series.map((s) => s.name.length))) + 12);
  const width = M.left + PLOT.width + legend;
  const heights = list.map((p) => M.top + Math.max(PLOT.height, p.series.length * LEGEND_ROW + 8) + M.bottom + 10);
  const H = 40 + heights.reduce((a, b) => a + b, 0);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="24" font-size="17" font-weight="700">${esc(title)}</text>`,
  ];
  let y = 40;
  list.forEach((p, i) => {
    out.push(...panel(p, y, xLabel, yLabel, axisOf(p)));
    y += heights[i]!;
  });
  return [...out, '</svg>'].join('\n');
}

/** Up to ~200 points of the latency CDF. */
function cdfPoints(sorted: readonly number[]): Array<[number, number]> {
  if (sorted.length === 0) return [];
  const step = Math.max(1, Math.floor(sorted.length / 200));
  const points: Array<[number, number]> = [];
  for (let i = 0; i < sorted.length; i += step) points.push([Math.max(0.1, sorted[i]!), (i + 1) / sorted.length]);
  return [...points, [Math.max(0.1, sorted.at(-1)!), 1]];
}

const NAMES: Record<Runner, string> = {
  service: 'service (HTTP)', pgbench: 'pgbench, textbook transaction', ceiling: 'same SQL, one Node process', 'plain-row-lock': 'plain row lock, one Node process',
};
/** One colour per kind of run, the same in every panel; a twin's own service run gets the fifth. */
const COLOUR: Record<Runner | 'twin', string> = { service: COLORS[0]!, pgbench: COLORS[1]!, ceiling: COLORS[2]!, 'plain-row-lock': COLORS[3]!, twin: COLORS[4]! };

/**
 * One panel per workload: its service run beside the ceilings it is measured against; a keyed
 * twin or slow-platform beside its base workload's service run and ceilings too.
 */
function panels(runs: readonly RunRecord[]) {
  return [...new Set(runs.filter((r) => r.runner === 'service').map((r) => r.workload))].map((w) => {
    const base = TWIN[w] ?? w;
    const twinned = base !== w;
    const name = (r: RunRecord) =>
      r.runner !== 'service' ? `${twinned ? `${base} · ` : ''}${NAMES[r.runner]}` : twinned ? `${r.workload} · service (HTTP)` : 'service (HTTP)';
    const color = (r: RunRecord) => (twinned && r.workload === w ? COLOUR.twin : COLOUR[r.runner]);
    const chosen = twinned ? [...runs.filter((r) => r.workload === w), ...runs.filter((r) => r.workload === base)] : runs.filter((r) => r.workload === w);
    return { title: w, runs: chosen.map((r) => ({ r, name: name(r), color: color(r), dashed: twinned && r.workload === w && w !== 'slow-platform' })) };
  });
}

/** throughput.svg (requests per second over the window) and latency.svg (the latency CDF). */
export function charts(runs: readonly RunRecord[]): { throughput: string; latency: string } {
  const list = panels(runs);
  const throughput = list
    .map((p) => ({
      title: p.title,
      series: p.runs.filter(({ r }) => r.summary.perSecond.length > 1).map(({ r, ...s }) => ({ ...s, points: r.summary.perSecond.map((v, i) => [i + 1, v] as const) })),
    }))
    .filter((p) => p.series.length > 0);
  const latency = list.map((p) => ({
    title: p.title,
    series: p.runs.map(({ r, ...s }) => ({ ...s, points: cdfPoints(r.samples.map((x) => x[1]).sort((a, b) => a - b)) })),
  }));
  return {
    throughput: chart('Throughput over the measured window', throughput, 'seconds into the measured window', 'requests / s', (p) => {
      const xMax = Math.max(1, ...p.series.flatMap((s) => s.points.map((q) => q[0])));
      const step = niceMax(xMax / 6);
      return { min: 0, max: xMax, log: false, ticks: Array.from({ length: Math.floor(xMax / step) + 1 }, (_, i) => i * step), format: String };
    }),
    latency: chart('Latency distribution (share of requests answered within x)', latency, 'latency, ms (log scale)', 'share of requests', (p) => {
      const all = p.series.flatMap((s) => s.points.map((q) => q[0]));
      const min = Math.max(0.1, 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...all)))));
      const max = 10 ** Math.ceil(Math.log10(Math.max(1, ...all)));
      const ticks: number[] = [];
      for (let t = min; t <= max; t *= 10) ticks.push(t);
      return { min, max, log: true, ticks, format: (v) => (v >= 1 ? String(v) : v.toFixed(1)) };
    }),
  };
}
