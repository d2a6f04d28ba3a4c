import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { Instances, parse, TransportError, type Reply, type RequestSpec } from './client.ts';
import { Ledger, Tally, type Kind, type KnownOrder } from './ledger.ts';

export interface Fixture {
  readonly userIds: readonly number[];
  readonly productIds: readonly number[];
  readonly couponId: number;
  /** `Bearer …` per user. */
  readonly tokens: ReadonlyMap<number, string>;
}

/** A request the client cannot resolve: done, not done (refused, 503), or in doubt (reached, no answer). */
type Result = { reply: Reply } | { notDone: true } | { doubt: true };

/** Answers a client of this load may get without anything being wrong. */
const EXPECTED_REFUSALS = new Set(['IDEMPOTENCY_KEY_IN_USE', 'COUPON_EXHAUSTED', 'COUPON_ALREADY_ISSUED']);
/** How long a keyed write is retried (same key) through 503s and lost answers before it is left in doubt. */
const RETRY_FOR_MS = 120_000;
const IN_FLIGHT_MAX = 128;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/**
 * The mixed load, at `rate` requests a second over both instances: product and balance reads,
 * charges, orders (half with an Idempotency-Key, a quarter of those sent again as a client's retry
 * would), cancellations and partial refunds of orders it placed, coupon issues and orders using
 * the coupon. Writes with a key are retried with the same key until answered; what was answered
 * goes into the ledger.
 */
export class Load {
  /** The fault under way ('steady' between them): each answer is counted under the fault it started or ended in. */
  phase = 'steady';
  readonly tally = new Tally();
  readonly ledger = new Ledger();
  ordersPlaced = 0;
  private readonly instances: Instances;
  private readonly tasks = new Set<Promise<void>>();
  /** Orders that may be cancelled or refunded (checked again when picked). */
  private readonly open: string[] = [];
  /** Users who never asked for the coupon. */
  private readonly withoutCoupon: number[];
  private couponExhausted = false;
  private timer: NodeJS.Timeout | null = null;
  private started = 0;
  private startedAt = 0;
  private closed = false;
  private readonly abandoned = new AbortController();

  private readonly f: Fixture;
  private readonly rate: number;

  constructor(urls: readonly string[], f: Fixture, rate: number) {
    this.f = f;
    this.rate = rate;
    this.instances = new Instances(urls, IN_FLIGHT_MAX / 2);
    this.withoutCoupon = [...f.userIds];
    for (const u of f.userIds) this.ledger.coupons.set(u, 'none');
  }

  get inFlight(): number {
    return this.tasks.size;
  }

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.rate) - this.started;
      for (let i = 0; i < due; i++) {
        this.started++;
        if (this.tasks.size >= IN_FLIGHT_MAX) this.tally.skip(this.phase);
        else this.spawn(this.one());
      }
    }, 10);
  }

  /**
   * Stops sending and waits for what is in flight: keyed writes until answered or given up, or,
   * with `abandon` (an interrupted run), not at all: retries end and open requests are dropped.
   */
  async stop(options: { abandon?: boolean } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (options.abandon && !this.closed) {
      this.abandoned.abort();
      this.closed = true;
      await this.instances.destroy();
    }
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
    if (!this.closed) await this.instances.close();
    this.closed = true;
  }

  private spawn(work: Promise<void>): void {
    const task: Promise<void> = work
      .catch((err) => this.ledger.noteUnexpected('load error', err instanceof Error ? (err.stack ?? err.message) : String(err)))
      .finally(() => this.tasks.delete(task));
    this.tasks.add(task);
  }

  private one(): Promise<void> {
    const r = Math.random();
    if (r < 0.35) return this.read('product read', { method: 'GET', path: `/products/${pick(this.f.productIds)}` });
    if (r < 0.4) return this.read('product list', { method: 'GET', path: '/products?limit=20' });
    if (r < 0.55) {
      const userId = pick(this.f.userIds);
      return this.read('balance read', { method: 'GET', path: `/users/${userId}/balance`, authorization: this.f.tokens.get(userId) });
    }
    if (r < 0.6) return this.charge();
    if (r < 0.85) return this.order();
    if (r < 0.9) return this.cancel();
    if (r < 0.97) return this.refund();
    return this.issueCoupon();
  }

  /** One attempt, counted under the fault under way when it started or ended ('steady' if none). */
  private async send(kind: Kind, spec: RequestSpec): Promise<Reply> {
    const started = this.phase;
    const phase = () => (this.phase !== 'steady' ? this.phase : started);
    try {
      const reply = await this.instances.send(spec);
      const outcome = reply.code ? `${reply.status} ${reply.code}` : String(reply.status);
      this.tally.add(kind, phase(), outcome);
      if ((reply.status >= 500 && reply.status !== 503) || (reply.status >= 400 && reply.status < 500 && !EXPECTED_REFUSALS.has(reply.code))) {
        this.ledger.noteUnexpected(`${kind}: ${outcome}`, `${spec.method} ${spec.path} ${JSON.stringify(spec.body ?? null)} → ${reply.text}`);
      }
      return reply;
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      this.tally.add(kind, phase(), err.label);
      throw err;
    }
  }

  /** A request without a key: one attempt. */
  private async once(kind: Kind, spec: RequestSpec): Promise<Result> {
    try {
      const reply = await this.send(kind, spec);
      return reply.status === 503 ? { notDone: true } : { reply };
    } catch (err) {
      return (err as TransportError).reached ? { doubt: true } : { notDone: true };
    }
  }

  /**
   * A write with a key (or naturally idempotent): sent again, to the other instance, after a 503,
   * a refused connection, a lost answer or IDEMPOTENCY_KEY_IN_USE, until it is answered.
   */
  private async definite(kind: Kind, spec: RequestSpec): Promise<Result> {
    const deadline = performance.now() + RETRY_FOR_MS;
    let reached = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await this.send(kind, spec);
        if (reply.status !== 503 && reply.code !== 'IDEMPOTENCY_KEY_IN_USE') return { reply };
        if (reply.code === 'IDEMPOTENCY_KEY_IN_USE') reached = true;
      } catch (err) {
        if ((err as TransportError).reached) reached = true;
      }
      if (performance.now() > deadline || this.abandoned.signal.aborted) return reached ? { doubt: true } : { notDone: true };
      await sleep(Math.min(5_000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2), this.abandoned.signal);
    }
  }

  private async read(kind: Kind, spec: RequestSpec): Promise<void> {
    await this.once(kind, spec);
  }

  private async charge(): Promise<void> {
    const userId = pick(this.f.userIds);
    const spec: RequestSpec = { method: 'POST', path: `/users/${userId}/balance/charge`, authorization: this.f.tokens.get(userId), body: { amount: 10_000 } };
    const keyed = Math.random() < 0.5;
    const result = keyed ? await this.definite('charge', { ...spec, key: randomUUID() }) : await this.once('charge', spec);
    if ('reply' in result && result.reply.status === 200) this.ledger.charge(userId).confirmed++;
    if ('doubt' in result) this.ledger.charge(userId).inDoubt++;
  }

  private async order(): Promise<void> {
    const userId = pick(this.f.userIds);
    const count = 1 + Math.floor(Math.random() * 3);
    const products = new Set<number>();
    while (products.size < count) products.add(pick(this.f.productIds));
    const items = [...products].map((productId) => ({ productId, quantity: 1 + Math.floor(Math.random() * 3) }));
    const coupons = this.ledger.coupons;
    const couponId = coupons.get(userId) === 'held' && Math.random() < 0.5 ? this.f.couponId : null;
    if (couponId !== null) coupons.set(userId, 'pending');
    const body = couponId === null ? { userId, items } : { userId, items, couponId };
    const key = Math.random() < 0.5 ? randomUUID() : undefined;
    const spec: RequestSpec = { method: 'POST', path: '/orders', authorization: this.f.tokens.get(userId), body, key };
    const result = key ? await this.definite('order', spec) : await this.once('order', spec);

    if ('doubt' in result) {
      this.ledger.ordersInDoubt.push({ userId, items, couponId });
      if (couponId !== null) coupons.set(userId, 'use-unknown');
      return;
    }
    if (!('reply' in result) || result.reply.status !== 201) {
      if (couponId !== null) coupons.set(userId, 'held');
      return;
    }
    const answer = parse(result.reply.text);
    const orderId = answer.orderId as string;
    if (this.ledger.orders.has(orderId)) this.ledger.noteUnexpected('order: an orderId answered twice', orderId);
    this.ledger.orders.set(orderId, {
      orderId,
      userId,
      couponId,
      lines: new Map(items.map((i) => [i.productId, { quantity: i.quantity, refunded: 0 }])),
      status: answer.status,
      busy: false,
    });
    this.ordersPlaced++;
    this.ledger.placed[key ? 'keyed' : 'unkeyed']++;
    if (couponId !== null) coupons.set(userId, 'used');
    this.open.push(orderId);
    if (key && result.reply.replayed !== undefined) this.ledger.replayFailed(`first answer for key ${key} marked idempotent-replayed`);
    if (key && Math.random() < 0.25) this.spawn(this.replay(spec, result.reply.text));
  }

  /** The same keyed order sent again a moment later: the first answer again, marked as replayed. */
  private async replay(spec: RequestSpec, first: string): Promise<void> {
    await sleep(100 + Math.random() * 2_900, this.abandoned.signal);
    if (this.abandoned.signal.aborted) return;
    this.ledger.replays.sent++;
    const result = await this.definite('order replay', spec);
    if (!('reply' in result)) return this.ledger.replayFailed(`key ${spec.key}: ${'doubt' in result ? 'no answer' : 'not answered'} within ${RETRY_FOR_MS / 1000} s`);
    const { reply } = result;
    if (reply.status !== 201) return this.ledger.replayFailed(`key ${spec.key}: ${reply.status} ${reply.text}`);
    if (reply.replayed !== 'true') return this.ledger.replayFailed(`key ${spec.key}: idempotent-replayed ${JSON.stringify(reply.replayed)}`);
    if (!isDeepStrictEqual(parse(reply.text), parse(first))) return this.ledger.replayFailed(`key ${spec.key}: first ${first} / replay ${reply.text}`);
    this.ledger.replays.matched++;
  }

  /** An order this load placed that may be cancelled or refunded now (`minUnits` left at least). */
  private pickOpen(minUnits: number): KnownOrder | null {
    for (let tries = 0; tries < 8 && this.open.length > 0; tries++) {
      const i = Math.floor(Math.random() * this.open.length);
      const o = this.ledger.orders.get(this.open[i]!)!;
      if (o.status === 'CANCELLED' || o.status === 'unknown') {
        this.open[i] = this.open.at(-1)!;
        this.open.pop();
        continue;
      }
      const left = [...o.lines.values()].reduce((n, l) => n + l.quantity - l.refunded, 0);
      if (!o.busy && left >= minUnits) return o;
    }
    return null;
  }

  private async cancel(): Promise<void> {
    const o = this.pickOpen(1);
    if (!o) return this.read('product read', { method: 'GET', path: `/products/${pick(this.f.productIds)}` });
    o.busy = true;
    try {
      const spec: RequestSpec = { method: 'POST', path: `/orders/${o.orderId}/cancel`, authorization: this.f.tokens.get(o.userId), key: randomUUID() };
      const result = await this.definite('cancel', spec);
      if ('doubt' in result) {
        o.status = 'unknown';
        this.ledger.cancelsInDoubt.push(o.orderId);
        if (o.couponId !== null) this.ledger.coupons.set(o.userId, 'use-unknown');
      } else if ('reply' in result && result.reply.status === 200) {
        o.status = parse(result.reply.text).status;
        this.ledger.cancelled.add(o.orderId);
        // A cancelled order gives its coupon copy back.
        if (o.couponId !== null && this.ledger.coupons.get(o.userId) === 'used') this.ledger.coupons.set(o.userId, 'held');
      }
    } finally {
      o.busy = false;
    }
  }

  /** One unit of one line back, from an order with two units left at least: always a partial refund. */
  private async refund(): Promise<void> {
    const o = this.pickOpen(2);
    if (!o) return this.read('product read', { method: 'GET', path: `/products/${pick(this.f.productIds)}` });
    const [productId, line] = pick([...o.lines].filter(([, l]) => l.quantity > l.refunded));
    o.busy = true;
    try {
      const spec: RequestSpec = {
        method: 'POST', path: `/orders/${o.orderId}/refunds`, authorization: this.f.tokens.get(o.userId), key: randomUUID(),
        body: { items: [{ productId, quantity: 1 }] },
      };
      const result = await this.definite('refund', spec);
      if ('doubt' in result) {
        o.status = 'unknown';
        this.ledger.refundsInDoubt.push(o.orderId);
      } else if ('reply' in result && result.reply.status === 201) {
        const answer = parse(result.reply.text);
        this.ledger.refunds.set(answer.refundId, o.orderId);
        line.refunded++;
        o.status = answer.order.status;
      }
    } finally {
      o.busy = false;
    }
  }

  private async issueCoupon(): Promise<void> {
    if (this.couponExhausted || this.withoutCoupon.length === 0) {
      return this.read('product read', { method: 'GET', path: `/products/${pick(this.f.productIds)}` });
    }
    const i = Math.floor(Math.random() * this.withoutCoupon.length);
    const userId = this.withoutCoupon[i]!;
    this.withoutCoupon[i] = this.withoutCoupon.at(-1)!;
    this.withoutCoupon.pop();
    const coupons = this.ledger.coupons;
    coupons.set(userId, 'issuing');
    const spec: RequestSpec = {
      method: 'POST', path: `/coupons/${this.f.couponId}/issue`, authorization: this.f.tokens.get(userId), body: { userId },
    };
    // Issuing is idempotent by nature (one copy per user): a retry after a lost answer is told
    // COUPON_ALREADY_ISSUED if the first one went through.
    const result = await this.definite('coupon issue', spec);
    if ('doubt' in result) coupons.set(userId, 'issue-unknown');
    else if (!('reply' in result)) coupons.set(userId, 'none');
    else if (result.reply.status === 201 || result.reply.code === 'COUPON_ALREADY_ISSUED') coupons.set(userId, 'held');
    else {
      if (result.reply.code === 'COUPON_EXHAUSTED') {
        this.couponExhausted = true;
        this.ledger.couponExhaustedAnswers++;
      }
      coupons.set(userId, 'none');
    }
  }
}
