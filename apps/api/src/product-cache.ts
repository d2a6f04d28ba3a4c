import { ProductCache, systemClock, type OrderBook, type ProductBatchReads, type ReadStore } from '@shop/application';

/** Past this many products, the least recently fetched leave the cache: about 200 bytes each (205 measured with Node 24's heap). */
const MAX_CACHED_PRODUCTS = 100_000;

/**
 * `GET /products/{id}` served from memory for up to `maxAgeMs` (PRODUCT_CACHE_MS; 0: off), and what
 * this instance writes forgotten as it commits (or may have: a write whose answer was lost): an
 * order, refund or cancel's products through the book, an admin's change through `productChanged`.
 * Read on the primary, this instance's next read shows its own write; other instances' writes show
 * within `maxAgeMs`. With DATABASE_READ_URL both show within the replica's lag plus `maxAgeMs`: the
 * read after a forget may be served by a replica that has not replayed the write yet.
 */
export function withProductCache(reads: ReadStore & ProductBatchReads, book: OrderBook, maxAgeMs: number) {
  if (maxAgeMs === 0) return { reads, book, productChanged: undefined, cache: null };
  const cache = new ProductCache({ source: reads, clock: systemClock }, { maxAgeMs, maxEntries: MAX_CACHED_PRODUCTS });
  return {
    reads: { ...reads, product: (productId: number) => cache.product(productId) },
    book: {
      ...book,
      async write(w) {
        const forgetProducts = () => cache.forget(w.effects.stockChanges.map((c) => c.productId));
        let outcome: Awaited<ReturnType<OrderBook['write']>>;
        try {
          outcome = await book.write(w);
        } catch (err) {
          forgetProducts(); // its commit may have happened (an answer lost): forgetting costs a read at most
          throw err;
        }
        if (outcome === 'written') forgetProducts();
        return outcome;
      },
    } satisfies OrderBook,
    productChanged: (productId: number) => cache.forget([productId]),
    cache,
  };
}
