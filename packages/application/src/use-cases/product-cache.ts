import type { Clock, Product, ProductBatchReads } from '../ports/index.ts';

export interface ProductCacheOptions {
  /** No product is served whose read began longer ago than this (contract v1.2: a moment old; Cache-Control's max-age). */
  readonly maxAgeMs: number;
  /** Products kept at most; past it the least recently fetched (read or refreshed from the source) go first. */
  readonly maxEntries: number;
}

type Entry = { product: Product; readAt: number };
type Waiting = { resolve(p: Product | null): void; reject(e: unknown): void };

/**
 * `GET /products/{id}` from memory (issue 24: a product page at the cost of the framework). A
 * product is served while its read began less than `maxAgeMs` ago; past half of that, the read that
 * finds it still gets it at once and asks for it again in the background, so a product being viewed
 * is never read on its own request path twice a `maxAgeMs`. Reads that reach the source in one turn
 * of the event loop go as one batch: a flash sale's thousand views of one product cost one query
 * every half `maxAgeMs`, and views of many products one query each turn.
 *
 * Only what this instance wrote is known at once (`forget`, after a write that changed a product's
 * stock or price): another instance's write shows once the entry ages out. Unknown ids are not
 * kept, so nothing a client sends can fill the cache with them; `maxEntries` bounds the rest.
 */
export class ProductCache {
  private readonly entries = new Map<number, Entry>();
  /** Ids to read in the batch leaving at the end of this turn, with who waits for each (none: a refresh). */
  private pending = new Map<number, Waiting[]>();
  private scheduled = false;
  /** Ids whose refresh has left and not come back, so that one refresh is asked at a time. */
  private readonly refreshing = new Set<number>();
  /** Bumped by `forget`: a batch that left before it must not put back what it read. */
  private readonly forgotten = new Map<number, number>();
  private generation = 0;

  private readonly deps: { source: ProductBatchReads; clock: Clock };
  private readonly o: ProductCacheOptions;

  constructor(deps: { source: ProductBatchReads; clock: Clock }, o: ProductCacheOptions) {
    this.deps = deps;
    this.o = o;
  }

  product(productId: number): Promise<Product | null> {
    const now = this.deps.clock.now().getTime();
    const hit = this.entries.get(productId);
    if (hit) {
      const age = now - hit.readAt;
      if (age < this.o.maxAgeMs) {
        if (age >= this.o.maxAgeMs / 2 && !this.refreshing.has(productId)) this.ask(productId, null);
        return Promise.resolve(hit.product);
      }
    }
    return new Promise((resolve, reject) => this.ask(productId, { resolve, reject }));
  }

  /** After this instance changed these products: the next read of each reads it again. */
  forget(productIds: Iterable<number>): void {
    this.generation++;
    for (const id of productIds) {
      this.entries.delete(id);
      this.forgotten.set(id, this.generation);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private ask(productId: number, waiting: Waiting | null): void {
    const list = this.pending.get(productId) ?? [];
    if (waiting) list.push(waiting);
    this.pending.set(productId, list);
    this.refreshing.add(productId);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    const [startedAt, generation] = [this.deps.clock.now().getTime(), this.generation];
    let found: Product[];
    try {
      found = await this.deps.source.productsByIds([...batch.keys()]);
    } catch (err) {
      for (const [id, waiting] of batch) {
        this.refreshing.delete(id);
        for (const w of waiting) w.reject(err);
      }
      return;
    }
    const byId = new Map(found.map((p) => [p.productId, p]));
    for (const [id, waiting] of batch) {
      this.refreshing.delete(id);
      const product = byId.get(id) ?? null;
      if (product && (this.forgotten.get(id) ?? 0) <= generation) this.keep(id, { product, readAt: startedAt });
      else this.entries.delete(id);
      for (const w of waiting) w.resolve(product);
    }
    // Forgotten ids only matter to batches in flight; none is older than this one's generation by now.
    if (this.refreshing.size === 0) this.forgotten.clear();
  }

  private keep(id: number, entry: Entry): void {
    this.entries.delete(id); // re-inserted last: the Map's order is the order of reads
    this.entries.set(id, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.o.maxEntries) break;
      this.entries.delete(oldest);
    }
  }
}
