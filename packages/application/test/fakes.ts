import type {
  BookWrite,
  CancelWrite,
  Clock,
  Coupon,
  CouponIssuance,
  HeldCoupon,
  IdGenerator,
  IssueAttempt,
  LedgerEntry,
  OrderBook,
  OrderSnapshot,
  OrderWrite,
  Page,
  PlacedKeyResult,
  Product,
  ReadStore,
  Transaction,
  UnitOfWork,
  WriteOutcome,
} from '@shop/application';
import { cancelGuardHolds, cancellationChanges, guardHolds, placementChanges, type BookChanges, type Order, type OrderEvent, type Won } from '@shop/domain';

/**
 * In-memory fakes of the application's ports. They keep the promises the Postgres adapter keeps
 * and nothing more: a unit of work commits all of its writes or none, an idempotency key is held
 * by one transaction at a time, and a write that would break a table constraint fails.
 */

export class ManualClock implements Clock {
  private at: Date;
  constructor(at: Date) {
    this.at = at;
  }
  now = (): Date => new Date(this.at);
  set(at: Date): void {
    this.at = at;
  }
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms);
  }
}

export class SequentialIds implements IdGenerator {
  private n = 0;
  next = (): string => `id-${++this.n}`;
}

interface State {
  users: Map<number, { userId: number; name: string; balance: Won }>;
  ledger: Array<LedgerEntry & { userId: number }>;
  products: Map<number, Product>;
  coupons: Map<number, Coupon>;
  held: Map<string, HeldCoupon>;
  orders: Map<string, Order>;
  outbox: OrderEvent[];
  idempotency: Map<string, { fingerprint: string; result: unknown }>;
  nextId: number;
}

const heldKey = (userId: number, couponId: number) => `${userId}:${couponId}`;

function page<T>(all: T[], limit: number, cursor: string | null): Page<T> {
  const start = cursor ? Number(cursor) : 0;
  const items = all.slice(start, start + limit);
  return { items, nextCursor: start + limit < all.length ? String(start + limit) : null };
}

export class MemoryShop {
  state: State = {
    users: new Map(),
    ledger: [],
    products: new Map(),
    coupons: new Map(),
    held: new Map(),
    orders: new Map(),
    outbox: [],
    idempotency: new Map(),
    nextId: 1,
  };
  /** Rows locked, in order, by every transaction: the lock order is observable. */
  readonly locks: string[] = [];
  /** Awaited at each lock, so a test can hold a transaction open in the middle. */
  onLock: (row: string) => Promise<void> = async () => undefined;
  private readonly claims = new Set<string>();
  /** Awaited after an order's snapshot is read, before it is decided. */
  afterSnapshot: () => Promise<void> = async () => undefined;
  /** Awaited in a guarded write after its keys are claimed, before its guards are checked. */
  beforeGuardedWrite: () => Promise<void> = async () => undefined;
  /** Guarded writes refused because the snapshot no longer held. */
  staleWrites = 0;
  /** Looks at a key's state apart from a snapshot (book.keyState). */
  keyLooks = 0;

  /** A deep copy of everything stored, to compare before and after a request. */
  snapshot(): State {
    return structuredClone(this.state);
  }

  readonly uow: UnitOfWork = {
    run: async <T>(work: (tx: Transaction) => Promise<T>): Promise<T> => {
      const draft = structuredClone(this.state);
      const claimed: string[] = [];
      try {
        const result = await work(this.transaction(draft, claimed));
        this.state = draft;
        return result;
      } finally {
        for (const key of claimed) this.claims.delete(key);
      }
    },
  };

  private async lock(row: string): Promise<void> {
    this.locks.push(row);
    await this.onLock(row);
  }

  private transaction(s: State, claimed: string[]): Transaction {
    return {
      users: {
        exists: async (userId) => s.users.has(userId),
        create: async (name) => {
          const user = { userId: s.nextId++, name, balance: 0 };
          s.users.set(user.userId, user);
          return { ...user };
        },
      },
      products: {
        create: async (input) => {
          const product = { productId: s.nextId++, ...input };
          s.products.set(product.productId, product);
          return { ...product };
        },
        update: async (productId, change) => {
          const p = s.products.get(productId);
          if (!p) return null;
          const next = {
            ...p,
            ...(change.price !== undefined && { price: change.price }),
            ...(change.stock !== undefined && { stock: change.stock }),
          };
          s.products.set(productId, next);
          return { ...next };
        },
      },
      coupons: {
        create: async (input) => {
          const coupon = { ...input, couponId: s.nextId++, issuedQuantity: 0 };
          s.coupons.set(coupon.couponId, coupon);
          return { ...coupon };
        },
        lockCoupon: async (couponId) => {
          await this.lock(`coupon:${couponId}`);
          const c = s.coupons.get(couponId);
          return c ? { ...c } : null;
        },
        lockHeld: async (userId, couponId) => {
          await this.lock(`user_coupon:${userId}:${couponId}`);
          const h = s.held.get(heldKey(userId, couponId));
          return h ? { ...h } : null;
        },
        issue: async (couponId, userId, issuedAt, expiresAt) => issueInto(s, couponId, userId, issuedAt, expiresAt),
      },
      balances: {
        lock: async (userId) => {
          await this.lock(`balance:${userId}`);
          return s.users.get(userId)?.balance ?? null;
        },
        record: async (userId, entry) => {
          const user = s.users.get(userId);
          if (!user) throw new Error(`no user ${userId}`);
          if (user.balance + entry.amount !== entry.balanceAfter) throw new Error('ledger entry does not add up');
          user.balance = entry.balanceAfter;
          s.ledger.push({ ...entry, userId });
        },
      },
      idempotency: {
        tryClaim: async (userId, key) => {
          const k = `${userId}:${key}`;
          if (this.claims.has(k)) return false;
          this.claims.add(k);
          claimed.push(k);
          return true;
        },
        find: async (userId, key) => s.idempotency.get(`${userId}:${key}`) ?? null,
        save: async (userId, key, fingerprint, result) => {
          s.idempotency.set(`${userId}:${key}`, { fingerprint, result: structuredClone(result) });
        },
      },
    };
  }

  readonly reads: ReadStore = {
    userExists: async (userId) => this.state.users.has(userId),
    balance: async (userId) => this.state.users.get(userId)?.balance ?? null,
    ledger: async (userId, limit, cursor) =>
      page(
        this.state.ledger.filter((e) => e.userId === userId).reverse().map(({ userId: _, ...e }) => e),
        limit,
        cursor,
      ),
    product: async (id) => this.state.products.get(id) ?? null,
    products: async (limit, cursor) => page([...this.state.products.values()], limit, cursor),
    order: async (id) => structuredClone(this.state.orders.get(id) ?? null),
    ordersOf: async (userId, limit, cursor) =>
      page([...this.state.orders.values()].filter((o) => o.userId === userId).reverse(), limit, cursor),
    heldCoupons: async (userId) => [...this.state.held.values()].filter((h) => h.userId === userId),
  };

  readonly book: OrderBook = {
    snapshot: async (userId, ids, couponId, key) => {
      const seen = {
        ...orderSnapshot(this.state, userId, ids, couponId),
        completedKey: key === null ? null : structuredClone(this.state.idempotency.get(`${userId}:${key}`) ?? null),
        keyedOrder: null as Order | null,
      };
      const named = (seen.completedKey?.result as Partial<PlacedKeyResult> | undefined)?.orderId;
      if (typeof named === 'string') seen.keyedOrder = structuredClone(this.state.orders.get(named) ?? null);
      await this.afterSnapshot();
      return seen;
    },
    keyState: async (userId, key) => {
      this.keyLooks++;
      return {
        completedKey: structuredClone(this.state.idempotency.get(`${userId}:${key}`) ?? null),
        keyInFlight: this.claims.has(`${userId}:${key}`),
      };
    },
    write: async (w) => (await this.writeGroup([w]))[0]!,
    cancelSnapshot: async (orderId, key) => {
      const order = structuredClone(this.state.orders.get(orderId) ?? null);
      const k = order && key !== null ? `${order.userId}:${key}` : null;
      const seen = {
        order,
        completedKey: k === null ? null : structuredClone(this.state.idempotency.get(k) ?? null),
        keyInFlight: k !== null && this.claims.has(k),
      };
      await this.afterSnapshot();
      return seen;
    },
  };

  /**
   * What `write_orders` does, in memory: claim the keys (busy when another write holds one), then
   * each write in turn is applied if its guard holds and its key is still unused, else stale.
   */
  async writeGroup(writes: readonly BookWrite[]): Promise<WriteOutcome[]> {
    const claimed: string[] = [];
    const busy = writes.map((w) => {
      if (w.claim === null) return false;
      const k = `${ownerOf(w)}:${w.claim.key}`;
      if (this.claims.has(k)) return true;
      this.claims.add(k);
      claimed.push(k);
      return false;
    });
    try {
      await this.beforeGuardedWrite();
      // One transaction: an error in any order leaves the state as it was.
      const draft = structuredClone(this.state);
      const outcomes = writes.map((w, i): WriteOutcome => {
        if (busy[i]) return 'busy';
        const keyTaken = w.claim !== null && draft.idempotency.has(`${ownerOf(w)}:${w.claim.key}`);
        if (!guardHoldsIn(draft, w) || keyTaken) {
          this.staleWrites++;
          return 'stale';
        }
        if (w.kind === 'place') apply(draft, w);
        else applyCancel(draft, w);
        return 'placed';
      });
      this.state = draft;
      return outcomes;
    } finally {
      for (const k of claimed) this.claims.delete(k);
    }
  }

  readonly issuance: CouponIssuance = {
    peek: async (couponId, userId) => {
      const coupon = this.state.coupons.get(couponId);
      if (!coupon) return null;
      return {
        coupon: { ...coupon },
        held: this.state.held.has(heldKey(userId, couponId)),
        userExists: this.state.users.has(userId),
      };
    },
    tryIssue: async (couponId, userId, now, expiresAt): Promise<IssueAttempt> => {
      const c = this.state.coupons.get(couponId)!;
      if (this.state.held.has(heldKey(userId, couponId))) return { kind: 'already-issued' };
      const inWindow = (!c.issueStartsAt || now >= c.issueStartsAt) && (!c.issueEndsAt || now < c.issueEndsAt);
      if (!inWindow || c.issuedQuantity >= c.totalQuantity) return { kind: 'not-issuable' };
      return { kind: 'issued', held: issueInto(this.state, couponId, userId, now, expiresAt) };
    },
  };

  // Arrangement, straight into the state.

  addUser(balance: Won): number {
    const userId = this.state.nextId++;
    this.state.users.set(userId, { userId, name: `user ${userId}`, balance });
    return userId;
  }

  addProduct(price: Won, stock: number): number {
    const productId = this.state.nextId++;
    this.state.products.set(productId, { productId, name: `product ${productId}`, price, stock });
    return productId;
  }

  addCoupon(fields: Partial<Coupon> = {}): number {
    const couponId = this.state.nextId++;
    this.state.coupons.set(couponId, {
      couponId,
      name: `coupon ${couponId}`,
      discountType: 'FIXED',
      discountValue: 1_000,
      minOrderAmount: 0,
      totalQuantity: 100,
      issuedQuantity: 0,
      issueStartsAt: null,
      issueEndsAt: null,
      validDays: 30,
      ...fields,
    });
    return couponId;
  }

  give(couponId: number, userId: number, issuedAt: Date, expiresAt: Date): void {
    issueInto(this.state, couponId, userId, issuedAt, expiresAt);
  }
}

function issueInto(s: State, couponId: number, userId: number, issuedAt: Date, expiresAt: Date): HeldCoupon {
  const c = s.coupons.get(couponId)!;
  const key = heldKey(userId, couponId);
  if (s.held.has(key)) throw new Error('unique violation: user already holds the coupon');
  if (c.issuedQuantity >= c.totalQuantity) throw new Error('check violation: issued past total');
  s.coupons.set(couponId, { ...c, issuedQuantity: c.issuedQuantity + 1 });
  const held: HeldCoupon = {
    couponId,
    userId,
    name: c.name,
    discountType: c.discountType,
    discountValue: c.discountValue,
    minOrderAmount: c.minOrderAmount,
    issuedAt,
    expiresAt,
    usedAt: null,
    orderId: null,
  };
  s.held.set(key, held);
  return { ...held };
}

/** One consistent read of the rows an order is decided on, as the Postgres snapshot reads them. */
function orderSnapshot(s: State, userId: number, ids: readonly number[], couponId: number | null): OrderSnapshot {
  const held = couponId === null ? undefined : s.held.get(heldKey(userId, couponId));
  return {
    balance: s.users.get(userId)?.balance ?? null,
    products: ids.flatMap((id) => {
      const p = s.products.get(id);
      return p ? [{ productId: p.productId, price: p.price, stock: p.stock }] : [];
    }),
    held: held ? { ...held } : null,
  };
}

const ownerOf = (w: BookWrite): number => (w.kind === 'place' ? w.order : w.cancellation.order).userId;

function guardHoldsIn(s: State, w: BookWrite): boolean {
  if (w.kind === 'cancel') return cancelGuardHolds(w.cancellation.guard, s.orders.get(w.cancellation.guard.orderId) ?? null);
  const { guard } = w;
  return guardHolds(guard, orderSnapshot(s, guard.userId, guard.stock.map((g) => g.productId), guard.unusedCoupon));
}

/** Stock as write_orders changes it: by the domain's signed changes, never below zero (its CHECK). */
function applyChanges(s: State, changes: BookChanges): void {
  for (const { productId, change } of changes.stockChanges) {
    const p = s.products.get(productId)!;
    if (p.stock + change < 0) throw new Error('check violation: stock would go negative');
    s.products.set(productId, { ...p, stock: p.stock + change });
  }
}

function apply(s: State, w: OrderWrite): void {
  const { order } = w;
  if (order.couponId !== null) {
    const k = heldKey(order.userId, order.couponId);
    s.held.set(k, { ...s.held.get(k)!, usedAt: order.createdAt, orderId: order.orderId });
  }
  commit(s, w, order, placementChanges(order), order.createdAt);
}

/** A cancellation as `write_orders` applies it: exactly the changes its Cancellation names. */
function applyCancel(s: State, w: CancelWrite): void {
  const { cancellation: c } = w;
  const { order } = c;
  if (c.releasedCoupon !== null) {
    const k = heldKey(order.userId, c.releasedCoupon);
    const held = s.held.get(k);
    if (!held || held.orderId !== order.orderId) throw new Error(`coupon copy ${k} is not used by order ${order.orderId}`);
    s.held.set(k, { ...held, usedAt: null, orderId: null });
  }
  commit(s, w, order, cancellationChanges(c), order.cancelledAt!);
}

/** What every write does alike: stock and balance by the domain's changes, the ledger entry, the order as it now is, its event and its key. */
function commit(s: State, { ledgerType, event, claim }: BookWrite, order: Order, changes: BookChanges, at: Date): void {
  applyChanges(s, changes);
  const user = s.users.get(order.userId)!;
  user.balance += changes.balanceChange;
  if (user.balance < 0) throw new Error('check violation: balance would go negative');
  s.ledger.push({ userId: order.userId, type: ledgerType, amount: changes.balanceChange, balanceAfter: user.balance, orderId: order.orderId, createdAt: at });
  s.orders.set(order.orderId, structuredClone(order));
  s.outbox.push(structuredClone(event));
  if (claim !== null) {
    s.idempotency.set(`${order.userId}:${claim.key}`, { fingerprint: claim.fingerprint, result: structuredClone(claim.result) });
  }
}
