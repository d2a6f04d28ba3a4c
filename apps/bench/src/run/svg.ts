/** Two small hand-drawn SVG charts, one panel per workload: no chart library for line plots. */

/** Colours far enough apart to tell lines apart (and for the usual colour-blindness). */
export const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#4b5563', '#db2777', '#65a30d'];
/** The plot area of one panel; the legend gets the room its longest name needs, to its right. */
const PLOT = { width: 520, height: 250 };
const M = { left: 64, top: 34, bottom: 44, legendGap: 16 };
const LEGEND_ROW = 18;
/** Rough width of a character at 12 px in a sans-serif face: generous, so a name is never cut. */
const CHAR_PX = 7.2;

export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  /** An explicit colour; otherwise the panel's next unused one. */
  readonly color?: string;
  readonly dashed?: boolean;
}

/** One workload's chart: its service run beside its ceilings. */
export interface Panel {
  readonly title: string;
  readonly series: readonly Series[];
}

interface Axis {
  min: number;
  max: number;
  log: boolean;
  ticks: number[];
  format: (v: number) => string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v)!;
}

const legendWidth = (panels: readonly Panel[]) =>
  Math.ceil(M.legendGap + 30 + CHAR_PX * Math.max(10, ...panels.flatMap((p) => p.series.map((s) => s.name.length))) + 12);

/** One panel at vertical offset `y0`; every line its own colour within the panel. */
function panel(p: Panel, y0: number, xLabel: string, yLabel: string, axisOf: (p: Panel) => Axis): string[] {
  const x = axisOf(p);
  const ph = Math.max(PLOT.height, p.series.length * LEGEND_ROW + 8);
  const yMax = niceMax(Math.max(0, ...p.series.flatMap((s) => s.points.map((q) => q[1]))));
  const left = M.left;
  const top = y0 + M.top;
  const fx = (v: number) => {
    const t = x.log ? (Math.log10(v) - Math.log10(x.min)) / (Math.log10(x.max) - Math.log10(x.min)) : (v - x.min) / (x.max - x.min || 1);
    return left + Math.max(0, Math.min(1, t)) * PLOT.width;
  };
  const fy = (v: number) => top + ph - (v / yMax) * ph;
  const out: string[] = [`<text x="${left}" y="${y0 + 22}" font-size="15" font-weight="600">${esc(p.title)}</text>`];
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
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
  const used = new Set(p.series.map((s) => s.color).filter((c): c is string => c !== undefined));
  const spare = COLORS.filter((c) => !used.has(c));
  p.series.forEach((s, i) => {
    const color = s.color ?? spare.shift() ?? COLORS[i % COLORS.length]!;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const d = s.points.map((q, j) => `${j ? 'L' : 'M'}${fx(q[0]).toFixed(1)},${fy(q[1]).toFixed(1)}`).join('');
    const lx = left + PLOT.width + M.legendGap;
    const ly = top + i * LEGEND_ROW + 8;
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  return out;
}

/** Panels stacked vertically in one SVG, all as wide as the widest legend needs. */
function panels(title: string, list: readonly Panel[], xLabel: string, yLabel: string, axisOf: (p: Panel) => Axis): string {
  const width = M.left + PLOT.width + legendWidth(list);
  const heights = list.map((p) => M.top + Math.max(PLOT.height, p.series.length * LEGEND_ROW + 8) + M.bottom + 10);
  const H = 40 + heights.reduce((a, b) => a + b, 0);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="24" font-size="17" font-weight="700">${esc(title)}</text>`,
  ];
  let y = 40;
  list.forEach((p, i) => {
    out.push(...panel(p, y, xLabel, yLabel, axisOf));
    y += heights[i]!;
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Requests (or pgbench transactions) per second over the measured window, one panel per workload. */
export function throughputChart(list: readonly Panel[]): string {
  return panels('Throughput over the measured window', list, 'seconds into the measured window', 'requests / s', (p) => {
    const xMax = Math.max(1, ...p.series.flatMap((s) => s.points.map((q) => q[0])));
    const step = niceMax(xMax / 6);
    return { min: 0, max: xMax, log: false, ticks: Array.from({ length: Math.floor(xMax / step) + 1 }, (_, i) => i * step), format: (v) => String(v) };
  });
}

/** Latency distribution as a CDF on a log time axis, one panel per workload. */
export function latencyChart(list: readonly Panel[]): string {
  return panels('Latency distribution (share of requests answered within x)', list, 'latency, ms (log scale)', 'share of requests', (p) => {
    const all = p.series.flatMap((s) => s.points.map((q) => q[0]));
    const min = Math.max(0.1, 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...all)))));
    const max = 10 ** Math.ceil(Math.log10(Math.max(1, ...all)));
    const ticks: number[] = [];
    for (let t = min; t <= max; t *= 10) ticks.push(t);
    return { min, max, log: true, ticks, format: (v) => (v >= 1 ? String(v) : v.toFixed(1)) };
  });
}

/** Up to ~200 CDF points from sorted latencies. */
export function cdfPoints(sorted: readonly number[]): Array<[number, number]> {
  if (sorted.length === 0) return [];
  const step = Math.max(1, Math.floor(sorted.length / 200));
  const points: Array<[number, number]> = [];
  for (let i = 0; i < sorted.length; i += step) points.push([Math.max(0.1, sorted[i]!), (i + 1) / sorted.length]);
  points.push([Math.max(0.1, sorted.at(-1)!), 1]);
  return points;
}
