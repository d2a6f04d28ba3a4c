import { ProductCache, systemClock, type OrderBook, type ProductBatchReads, type ReadStore } from '@shop/application';

/** Past this many products, the least recently read leave the cache: about 200 bytes each. */
const MAX_CACHED_PRODUCTS = 100_000;

/**
 * `GET /products/{id}` served from memory for up to `maxAgeMs` (PRODUCT_CACHE_MS; 0: off), and what
 * this instance writes forgotten as it commits: an order, refund or cancel's products through the
 * book, an admin's change through `productChanged`. Other instances' writes show within `maxAgeMs`
 * (plus the replica's lag, when the catalog is read on one).
 */
export function withProductCache(reads: ReadStore & ProductBatchReads, book: OrderBook, maxAgeMs: number) {
  if (maxAgeMs === 0) return { reads, book, productChanged: undefined, cache: null };
  const cache = new ProductCache({ source: reads, clock: systemClock }, { maxAgeMs, maxEntries: MAX_CACHED_PRODUCTS });
  return {
    reads: { ...reads, product: (productId: number) => cache.product(productId) },
    book: {
      ...book,
      async write(w) {
        const outcome = await book.write(w);
        if (outcome === 'written') cache.forget(w.effects.stockChanges.map((c) => c.productId));
        return outcome;
      },
    } satisfies OrderBook,
    productChanged: (productId: number) => cache.forget([productId]),
    cache,
  };
}
