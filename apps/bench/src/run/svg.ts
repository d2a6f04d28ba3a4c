/** Two small hand-drawn SVG charts: no chart library for two line plots. */

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#4b5563'];
const W = 820;
const H = 360;
const M = { left: 64, right: 240, top: 36, bottom: 44 };

export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  /** Series with the same key share a colour (default: the name). */
  readonly colorKey?: string;
  readonly dashed?: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v)!;
}

function chart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  x: { min: number; max: number; log: boolean; ticks: number[]; format: (v: number) => string },
): string {
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const fx = (v: number) => {
    const t = x.log ? (Math.log10(v) - Math.log10(x.min)) / (Math.log10(x.max) - Math.log10(x.min)) : (v - x.min) / (x.max - x.min || 1);
    return M.left + Math.max(0, Math.min(1, t)) * pw;
  };
  const fy = (v: number) => M.top + ph - (v / yMax) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="22" font-size="15" font-weight="600">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    out.push(
      `<line x1="${M.left}" x2="${M.left + pw}" y1="${fy(v)}" y2="${fy(v)}" stroke="#e5e7eb"/>`,
      `<text x="${M.left - 8}" y="${fy(v) + 4}" text-anchor="end" fill="#374151">${Math.round(v * 100) / 100}</text>`,
    );
  }
  for (const t of x.ticks) {
    out.push(
      `<line x1="${fx(t)}" x2="${fx(t)}" y1="${M.top}" y2="${M.top + ph}" stroke="#f3f4f6"/>`,
      `<text x="${fx(t)}" y="${M.top + ph + 16}" text-anchor="middle" fill="#374151">${x.format(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${M.left + pw / 2}" y="${H - 8}" text-anchor="middle" fill="#111827">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#111827">${esc(yLabel)}</text>`,
  );
  const colorKeys = [...new Set(series.map((s) => s.colorKey ?? s.name))];
  series.forEach((s, i) => {
    const color = COLORS[colorKeys.indexOf(s.colorKey ?? s.name) % COLORS.length];
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${fx(p[0]).toFixed(1)},${fy(p[1]).toFixed(1)}`).join('');
    const ly = M.top + i * 20 + 2;
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
      `<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${W - M.right + 38}" y="${M.top + i * 20 + 6}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Requests per second over the measured window, one line per run. */
export function throughputChart(series: readonly Series[]): string {
  const xMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const step = niceMax(xMax / 6);
  const ticks = Array.from({ length: Math.floor(xMax / step) + 1 }, (_, i) => i * step);
  return chart('Throughput over time', 'seconds into the measured window', 'requests / s', series, {
    min: 0,
    max: xMax,
    log: false,
    ticks,
    format: (v) => String(v),
  });
}

/** Latency distribution as a CDF on a log time axis, one line per run. */
export function latencyChart(series: readonly Series[]): string {
  const all = series.flatMap((s) => s.points.map((p) => p[0]));
  const min = Math.max(0.1, 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...all)))));
  const max = 10 ** Math.ceil(Math.log10(Math.max(1, ...all)));
  const ticks: number[] = [];
  for (let t = min; t <= max; t *= 10) ticks.push(t);
  return chart('Latency distribution (share of requests answered within x)', 'latency, ms (log scale)', 'share of requests', series, {
    min,
    max,
    log: true,
    ticks,
    format: (v) => (v >= 1 ? String(v) : v.toFixed(1)),
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
