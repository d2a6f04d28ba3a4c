/** A small seeded generator (mulberry32), so two runs draw the same requests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const pick = <T>(rand: () => number, from: readonly T[]): T => from[Math.floor(rand() * from.length)]!;

/** 1 to `max` distinct elements of `from`. */
export function pickDistinct<T>(rand: () => number, from: readonly T[], max: number): T[] {
  const n = 1 + Math.floor(rand() * max);
  const chosen = new Set<T>();
  while (chosen.size < n) chosen.add(pick(rand, from));
  return [...chosen];
}
