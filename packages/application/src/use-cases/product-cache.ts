import type { Clock, Product, ProductBatchReads } from '../ports/index.ts';

export interface ProductCacheOptions {
  /** No product is served whose read began longer ago than this (contract v1.2: a moment old; Cache-Control's max-age). */
  readonly maxAgeMs: number;
  /** Products kept at most; past it the least recently fetched (read or refreshed from the source) go first. */
  readonly maxEntries: number;
}

type Entry = { readonly product: Product; readonly readAt: number };
type Read = { readonly promise: Promise<Product | null>; resolve(p: Product | null): void; reject(e: unknown): void };
/** A read in flight: the forget count when its batch left (a forget after that makes what it saw too old to keep). */
type Flying = { readonly generation: number; readonly read: Read };

/**
 * `GET /products/{id}` from memory (issue 24: a product page at the cost of the framework). A
 * product is served while its read began less than `maxAgeMs` ago; past half of that, the read that
 * finds it still gets it at once and asks for it again in the background, so a product being viewed
 * is not read on its own request path while nothing changes it. Reads that reach the source in one
 * turn of the event loop go as one batch, and a view that misses joins a read of its product
 * already on its way, if that read left after the product's last forget.
 *
 * Only what this instance wrote is known at once (`forget`, after a write that changed a product's
 * stock or price): the product is dropped and, if it was being viewed, read again at once; views
 * meanwhile wait for that one read. A read that left before a forget does not put back what it saw,
 * and no read puts back a product older than the one kept. Another instance's write shows once
 * the entry ages out. Unknown ids are not kept, so nothing a client sends can fill the cache with
 * them; `maxEntries` bounds the rest, and the bookkeeping of reads in flight is as large as they are.
 */
export class ProductCache {
  private readonly entries = new Map<number, Entry>();
  /** Ids to read in the batch leaving at the end of this turn. */
  private pending = new Map<number, Read>();
  private scheduled = false;
  /** Per id, its newest read in flight and how many are in flight (an older one may still be). */
  private readonly flying = new Map<number, Flying>();
  private readonly flyingCount = new Map<number, number>();
  /** Per id with a read in flight, the forget count at its last forget. */
  private readonly forgottenAt = new Map<number, number>();
  private generation = 0;
  private readonly deps: { source: ProductBatchReads; clock: Clock };
  private readonly o: ProductCacheOptions;

  constructor(deps: { source: ProductBatchReads; clock: Clock }, o: ProductCacheOptions) {
    this.deps = deps;
    this.o = o;
  }

  product(productId: number): Promise<Product | null> {
    const hit = this.entries.get(productId);
    if (hit) {
      const age = this.deps.clock.now().getTime() - hit.readAt;
      if (age < this.o.maxAgeMs) {
        if (age >= this.o.maxAgeMs / 2 && !this.flyingCount.has(productId)) this.enqueue(productId);
        return Promise.resolve(hit.product);
      }
    }
    const flying = this.flying.get(productId);
    if (flying && flying.generation >= (this.forgottenAt.get(productId) ?? 0)) return flying.read.promise;
    return this.enqueue(productId).promise;
  }

  /** After this instance changed these products: no read from before is served or kept; those being viewed are read again now. */
  forget(productIds: Iterable<number>): void {
    this.generation++;
    for (const id of productIds) {
      const viewed = this.entries.delete(id);
      if (this.flyingCount.has(id)) this.forgottenAt.set(id, this.generation);
      if (viewed) this.enqueue(id);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** The read of `productId` in the next batch (a pending one leaves after now, so any caller may share it). */
  private enqueue(productId: number): Read {
    const queued = this.pending.get(productId);
    if (queued) return queued;
    let resolve!: Read['resolve'];
    let reject!: Read['reject'];
    const promise = new Promise<Product | null>((res, rej) => ((resolve = res), (reject = rej)));
    // A refresh has no caller to hear its failure (the product then ages out): never an unhandled rejection.
    promise.catch(() => undefined);
    const read = { promise, resolve, reject };
    this.pending.set(productId, read);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    return read;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    const [startedAt, generation] = [this.deps.clock.now().getTime(), this.generation];
    for (const [id, read] of batch) {
      this.flying.set(id, { generation, read });
      this.flyingCount.set(id, (this.flyingCount.get(id) ?? 0) + 1);
    }
    let found: Map<number, Product> | null = null;
    let failure: unknown;
    try {
      found = new Map((await this.deps.source.productsByIds([...batch.keys()])).map((p) => [p.productId, p]));
    } catch (err) {
      failure = err;
    }
    for (const [id, read] of batch) {
      const product = found?.get(id) ?? null;
      if (found && (this.forgottenAt.get(id) ?? 0) <= generation) this.keep(id, product, startedAt);
      if (this.flying.get(id)?.read === read) this.flying.delete(id);
      const left = this.flyingCount.get(id)! - 1;
      if (left > 0) this.flyingCount.set(id, left);
      else {
        this.flyingCount.delete(id);
        this.forgottenAt.delete(id); // no read from before its last forget is in flight any more
      }
      if (found) read.resolve(product);
      else read.reject(failure);
    }
  }

  private keep(id: number, product: Product | null, readAt: number): void {
    const kept = this.entries.get(id);
    if (kept && kept.readAt > readAt) return; // a read that left later came back first
    this.entries.delete(id); // re-inserted last: the Map's order is the order of fetches
    if (!product) return;
    this.entries.set(id, { product, readAt });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.o.maxEntries) break;
      this.entries.delete(oldest);
    }
  }
}
