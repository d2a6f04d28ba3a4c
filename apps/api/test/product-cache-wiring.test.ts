import { describe, expect, test } from 'vitest';
import type { BookWrite, OrderBook, Product, ReadStore, WriteOutcome } from '@shop/application';
import { withProductCache } from '../src/product-cache.ts';

/**
 * How the service wires the product cache (ADR 0015): the products of every write that committed,
 * or may have (its answer lost: the book threw), are forgotten; of a write that changed nothing,
 * they are kept. No database: a read store and a book in memory.
 */
function world() {
  let stock = 10;
  const reads = {
    product: async () => { throw new Error('the cache reads in batches'); },
    productsByIds: async (ids: readonly number[]) => ids.map((productId): Product => ({ productId, name: 'p', price: 1_000, stock })),
  } as unknown as ReadStore & { productsByIds(ids: readonly number[]): Promise<Product[]> };
  let next: () => Promise<WriteOutcome> = async () => 'written';
  const book = { write: (_: BookWrite) => next() } as unknown as OrderBook;
  const wired = withProductCache(reads, book, 60_000);
  const write = { effects: { stockChanges: [{ productId: 7, change: -1 }] }, claim: null } as unknown as BookWrite;
  return {
    wired, write,
    sell: (outcome: () => Promise<WriteOutcome>) => ((stock -= 1), (next = outcome)),
    stockShown: async () => (await wired.reads.product(7))?.stock,
  };
}

describe('the product cache as the service wires it', () => {
  test('a written write, and one whose answer was lost, are forgotten; a refused one is not', async () => {
    const w = world();
    expect(await w.stockShown()).toBe(10);
    w.sell(async () => 'written');
    await w.wired.book.write(w.write);
    expect(await w.stockShown()).toBe(9);

    w.sell(async () => { throw new Error('the answer was lost: committed or not'); });
    await expect(w.wired.book.write(w.write)).rejects.toThrow('answer was lost');
    expect(await w.stockShown()).toBe(8);

    w.sell(async () => 'guard_failed'); // the read store moves on (another instance's sale), this write changed nothing
    expect(await w.wired.book.write(w.write)).toBe('guard_failed');
    expect(await w.stockShown()).toBe(8); // still the cached read: nothing of ours to forget
  });

  test("an admin's change is forgotten through productChanged; PRODUCT_CACHE_MS=0 wires nothing", async () => {
    const w = world();
    expect(await w.stockShown()).toBe(10);
    w.sell(async () => 'written');
    w.wired.productChanged!(7);
    expect(await w.stockShown()).toBe(9);
    const off = withProductCache({} as never, {} as never, 0);
    expect([off.cache, off.productChanged]).toEqual([null, undefined]);
  });
});
