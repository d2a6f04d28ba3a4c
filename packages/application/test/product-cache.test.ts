import { describe, expect, test } from 'vitest';
import { ProductCache, type Product } from '@shop/application';
import { ManualClock } from './fakes.ts';

/** A catalog whose reads are counted and can be held, to see what the cache asks for and when. */
function catalog() {
  const rows = new Map<number, Product>([1, 2, 3].map((id) => [id, { productId: id, name: `p${id}`, price: 1_000 * id, stock: 10 }]));
  const batches: number[][] = [];
  let hold: Promise<void> | null = null;
  let failing: Error | null = null;
  const source = {
    async productsByIds(ids: readonly number[]) {
      batches.push([...ids]);
      const snapshot = ids.flatMap((id) => (rows.has(id) ? [{ ...rows.get(id)! }] : []));
      if (hold) await hold;
      if (failing) throw failing;
      return snapshot;
    },
  };
  return {
    batches, source,
    setStock: (id: number, stock: number) => rows.set(id, { ...rows.get(id)!, stock }),
    holdReads() {
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      return () => ((hold = null), release());
    },
    fail: (err: Error | null) => (failing = err),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('ProductCache', () => {
  const setup = (maxEntries = 100) => {
    const clock = new ManualClock(new Date('2026-12-07T00:00:00Z'));
    const db = catalog();
    return { clock, db, cache: new ProductCache({ source: db.source, clock }, { maxAgeMs: 1_000, maxEntries }) };
  };

  test('reads arriving in one turn go as one batch; then they are served from memory', async () => {
    const { db, cache } = setup();
    const first = await Promise.all([cache.product(1), cache.product(2), cache.product(1), cache.product(9)]);
    expect(first.map((p) => p?.productId ?? null)).toEqual([1, 2, 1, null]);
    expect(db.batches).toEqual([[1, 2, 9]]);
    for (let i = 0; i < 50; i++) expect(await cache.product(2)).toMatchObject({ productId: 2, price: 2_000 });
    expect(db.batches).toHaveLength(1);
    expect(cache.size).toBe(2); // an unknown id is not kept
  });

  test('past half its age a product is served at once and read again behind it; never served past its age', async () => {
    const { clock, db, cache } = setup();
    await cache.product(1);
    db.setStock(1, 7);
    clock.advance(400);
    expect((await cache.product(1))?.stock).toBe(10);
    expect(db.batches).toHaveLength(1);
    clock.advance(200); // 600 ms: still served, and refreshed once however many read it
    expect((await Promise.all([cache.product(1), cache.product(1), cache.product(1)])).map((p) => p?.stock)).toEqual([10, 10, 10]);
    await settle();
    expect(db.batches).toHaveLength(2);
    expect((await cache.product(1))?.stock).toBe(7);
    // Nobody reads it for a while: past its age it is read on the request's path, not served stale.
    db.setStock(1, 3);
    clock.advance(1_000);
    expect((await cache.product(1))?.stock).toBe(3);
    expect(db.batches).toHaveLength(3);
  });

  test('forget: the next read reads again, and a read that left before it does not put back what it saw', async () => {
    const { db, cache } = setup();
    await cache.product(1);
    const release = db.holdReads();
    cache.forget([1]);
    const before = cache.product(1); // leaves now, sees stock 10
    await settle();
    db.setStock(1, 4); // the write that the forget below reports
    cache.forget([1]);
    release();
    expect((await before)?.stock).toBe(10);
    expect((await cache.product(1))?.stock).toBe(4);
    expect(db.batches).toEqual([[1], [1], [1]]);
  });

  test('two reads of a product in flight, the later back first: the earlier one does not put back what it saw', async () => {
    const { db, cache } = setup();
    await cache.product(1);
    const releaseFirst = db.holdReads();
    cache.forget([1]); // viewed: read again at once (held)
    const first = cache.product(1);
    await settle();
    db.setStock(1, 6);
    cache.forget([1]); // a second write while the first refresh is out
    db.holdReads()(); // nothing held from here on
    const second = await cache.product(1); // leaves after the forget, comes back first
    expect(second?.stock).toBe(6);
    releaseFirst();
    expect((await first)?.stock).toBe(10); // its caller asked before the second write
    expect((await cache.product(1))?.stock).toBe(6);
    expect(db.batches).toEqual([[1], [1], [1]]);
  });

  test('views while a forgotten product is read again share that one read; none gets what was read before the forget', async () => {
    const { db, cache } = setup();
    await cache.product(1);
    db.setStock(1, 9);
    cache.forget([1]);
    const views = await Promise.all(Array.from({ length: 20 }, () => cache.product(1)));
    expect(views.every((p) => p?.stock === 9)).toBe(true);
    expect(db.batches).toEqual([[1], [1]]);
    // A product nobody viewed is not read again on its forget.
    cache.forget([2, 3]);
    await settle();
    expect(db.batches).toHaveLength(2);
  });

  test('a failed read fails its waiters, keeps nothing, and the next read tries again', async () => {
    const { db, cache } = setup();
    db.fail(new Error('database down'));
    await expect(Promise.all([cache.product(1), cache.product(2)])).rejects.toThrow('database down');
    db.fail(null);
    expect((await cache.product(2))?.productId).toBe(2);
    expect(db.batches).toEqual([[1, 2], [2]]);
  });

  test('a failed refresh leaves the product to age out; it is then read on the request path', async () => {
    const { clock, db, cache } = setup();
    await cache.product(1);
    clock.advance(600);
    db.fail(new Error('replica gone'));
    expect((await cache.product(1))?.stock).toBe(10);
    await settle();
    clock.advance(500);
    await expect(cache.product(1)).rejects.toThrow('replica gone');
    db.fail(null);
    expect((await cache.product(1))?.productId).toBe(1);
  });

  test('at most maxEntries products; the least recently fetched leave first', async () => {
    const { db, cache } = setup(2);
    await cache.product(1);
    await cache.product(2);
    await cache.product(3);
    expect(cache.size).toBe(2);
    await cache.product(2);
    await cache.product(3);
    expect(db.batches).toHaveLength(3);
    await cache.product(1);
    expect(db.batches).toHaveLength(4);
  });
});
