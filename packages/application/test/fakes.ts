import { keyState } from '@shop/application';
import type {
  BookWrite,
  Clock,
  Coupon,
  CouponIssuance,
  HeldCoupon,
  IdGenerator,
  IssueAttempt,
  LedgerEntry,
  OrderBook,
  OrderSnapshot,
  Page,
  PlacedKeyResult,
  Product,
  ReadStore,
  Transaction,
  UnitOfWork,
  WriteOutcome,
} from '@shop/application';
import { guardHolds, refundedUnits, type GuardedRows, type Order, type OrderEffects, type OrderEvent, type RefundRecord, type Won } from '@shop/domain';

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
  /** Each order's partial refunds, oldest first. */
  refunds: Map<string, RefundRecord[]>;
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
    refunds: new Map(),
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
  guardFailures = 0;
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
        claim: async (userId, key) => {
          const k = `${userId}:${key}`;
          const heldElsewhere = this.claims.has(k);
          if (!heldElsewhere) {
            this.claims.add(k);
            claimed.push(k);
          }
          return keyState(structuredClone(s.idempotency.get(k) ?? null), heldElsewhere);
        },
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
    refunds: async (id) => structuredClone(this.state.refunds.get(id) ?? []),
    ordersOf: async (userId, limit, cursor) =>
      page([...this.state.orders.values()].filter((o) => o.userId === userId).reverse(), limit, cursor),
    heldCoupons: async (userId) => [...this.state.held.values()].filter((h) => h.userId === userId),
  };

  readonly book: OrderBook = {
    snapshot: async (userId, ids, couponId, key) => {
      const seen = {
        ...orderSnapshot(this.state, userId, ids, couponId),
        completed: key === null ? null : structuredClone(this.state.idempotency.get(`${userId}:${key}`) ?? null),
        keyedOrder: null as Order | null,
      };
      const named = (seen.completed?.result as Partial<PlacedKeyResult> | undefined)?.orderId;
      if (typeof named === 'string') seen.keyedOrder = structuredClone(this.state.orders.get(named) ?? null);
      await this.afterSnapshot();
      return seen;
    },
    keyState: async (userId, key) => {
      this.keyLooks++;
      return keyState(structuredClone(this.state.idempotency.get(`${userId}:${key}`) ?? null), this.claims.has(`${userId}:${key}`));
    },
    write: async (w) => (w.signal?.aborted ? 'abandoned' : (await this.writeGroup([w]))[0]!),
    changeSnapshot: async (orderId, key) => {
      const order = structuredClone(this.state.orders.get(orderId) ?? null);
      const k = order && key !== null ? `${order.userId}:${key}` : null;
      const seen = {
        order,
        key: k === null ? keyState(null, false) : keyState(structuredClone(this.state.idempotency.get(k) ?? null), this.claims.has(k)),
      };
      await this.afterSnapshot();
      return seen;
    },
  };

  /**
   * What `write_order_group` does, in memory: claim the keys (key_busy when another write holds
   * one), then each write in turn is applied if its key is still unused and its guard holds on the
   * rows as the writes before it left them.
   */
  async writeGroup(writes: readonly BookWrite[]): Promise<WriteOutcome[]> {
    const claimed: string[] = [];
    const busy = writes.map((w) => {
      if (w.claim === null) return false;
      const k = `${w.effects.guard.userId}:${w.claim.key}`;
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
        // Completed before this group wins over whoever holds the key now, as in the SQL.
        if (w.claim !== null && this.state.idempotency.has(`${w.effects.guard.userId}:${w.claim.key}`)) return 'key_completed';
        if (busy[i]) return 'key_busy';
        if (!guardHolds(w.effects.guard, guardedRows(draft, w.effects))) {
          this.guardFailures++;
          return 'guard_failed';
        }
        apply(draft, w);
        return 'written';
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
      if (c.issuedQuantity >= c.totalQuantity) return { kind: 'not-issuable' };
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

/** The rows a write's guard names, as they are in `s`. */
function guardedRows(s: State, { guard, order }: OrderEffects): GuardedRows {
  const held = guard.coupon === null ? undefined : s.held.get(heldKey(guard.userId, guard.coupon.couponId));
  const current = s.orders.get(order.orderId);
  return {
    ...orderSnapshot(s, guard.userId, guard.stock.map((g) => g.productId), null),
    order: current === undefined ? null : { status: current.status, refundedUnits: refundedUnits(current) },
    couponHeldBy: held === undefined ? undefined : held.orderId,
  };
}

/** A write as `write_order_group` applies it: exactly the values its effects name, under the same table constraints. */
function apply(s: State, { effects: e, claim }: BookWrite): void {
  const { userId } = e.guard;
  for (const { productId, change } of e.stockChanges) {
    const p = s.products.get(productId)!;
    if (p.stock + change < 0) throw new Error('check violation: stock would go negative');
    s.products.set(productId, { ...p, stock: p.stock + change });
  }
  const user = s.users.get(userId)!;
  user.balance += e.balanceChange;
  if (user.balance < 0) throw new Error('check violation: balance would go negative');
  s.ledger.push({ userId, type: e.ledgerType, amount: e.balanceChange, balanceAfter: user.balance, orderId: e.order.orderId, createdAt: e.at });
  if (e.coupon !== null) {
    const k = heldKey(userId, e.coupon.couponId);
    const { heldBy } = e.coupon;
    s.held.set(k, { ...s.held.get(k)!, orderId: heldBy, usedAt: heldBy === null ? null : e.at });
  }
  s.orders.set(e.order.orderId, structuredClone(e.order));
  if (e.refund !== null) s.refunds.set(e.order.orderId, [...(s.refunds.get(e.order.orderId) ?? []), structuredClone(e.refund)]);
  s.outbox.push(structuredClone(e.event));
  if (claim !== null) {
    s.idempotency.set(`${userId}:${claim.key}`, { fingerprint: claim.fingerprint, result: structuredClone(claim.result) });
  }
}
