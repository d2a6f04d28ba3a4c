import { beforeEach, describe, expect, test, vi } from 'vitest';
import {
  balanceHistory,
  cancelOrder,
  chargeUserBalance,
  createCoupon,
  createProduct,
  createUser,
  getBalance,
  getOrder,
  grantCoupon,
  issueCoupon,
  listEvents,
  listHeldCoupons,
  listOrders,
  placeOrder,
  redeliverEvent,
  updateProduct,
  type Actor,
  type OutboxStore,
} from '@shop/application';
import { admin, user } from './actors.ts';
import { ManualClock, MemoryShop, SequentialIds } from './fakes.ts';

/**
 * Who may do what, use case by use case (contract, "Authentication"): a user acts for themself
 * only; an admin may read and charge anyone's account, cancel anyone's order and run the
 * operations, but never buys in a user's name. A refusal is FORBIDDEN and changes nothing.
 */
const NOW = new Date('2026-11-24T09:00:00.000Z');

let shop: MemoryShop;
/** Owns the data every use case below is run against. */
let owner: number;
let stranger: number;
let productId: number;
let couponId: number;
let orderId: string;
const outbox = {
  list: async () => ({ items: [], nextCursor: null }),
  redeliver: async (eventId: string) => ({ eventId }),
} as unknown as OutboxStore;

beforeEach(async () => {
  shop = new MemoryShop();
  owner = shop.addUser(10_000);
  stranger = shop.addUser(10_000);
  productId = shop.addProduct(1_000, 10);
  couponId = shop.addCoupon();
  ({
    order: { orderId },
  } = await placeOrder(deps(), { actor: user(owner), userId: owner, items: [{ productId, quantity: 1 }] }));
});

const deps = () => ({
  uow: shop.uow,
  reads: shop.reads,
  book: shop.book,
  issuance: shop.issuance,
  clock: new ManualClock(NOW),
  ids: new SequentialIds(),
  cancelDays: 7,
  outbox,
  wakeRelay: vi.fn(),
});

type Who = 'owner' | 'stranger' | 'admin';
const actorOf = (who: Who): Actor => (who === 'admin' ? admin : user(who === 'owner' ? owner : stranger));

/** Each use case, run by `actor` on the owner's data; and who of the three may run it. */
const useCases: ReadonlyArray<{ name: string; allowed: readonly Who[]; run: (actor: Actor) => Promise<unknown> }> = [
  { name: 'placeOrder', allowed: ['owner'], run: (actor) => placeOrder(deps(), { actor, userId: owner, items: [{ productId, quantity: 1 }] }) },
  { name: 'issueCoupon', allowed: ['owner'], run: (actor) => issueCoupon(deps(), actor, couponId, owner) },
  { name: 'cancelOrder', allowed: ['owner', 'admin'], run: (actor) => cancelOrder(deps(), { actor, orderId }) },
  { name: 'getOrder', allowed: ['owner', 'admin'], run: (actor) => getOrder(shop.reads, actor, orderId) },
  { name: 'listOrders', allowed: ['owner', 'admin'], run: (actor) => listOrders(shop.reads, actor, owner, 20, null) },
  { name: 'getBalance', allowed: ['owner', 'admin'], run: (actor) => getBalance(shop.reads, actor, owner) },
  { name: 'balanceHistory', allowed: ['owner', 'admin'], run: (actor) => balanceHistory(shop.reads, actor, owner, 20, null) },
  { name: 'chargeUserBalance', allowed: ['owner', 'admin'], run: (actor) => chargeUserBalance(deps(), { actor, userId: owner, amount: 1 }) },
  { name: 'listHeldCoupons', allowed: ['owner', 'admin'], run: (actor) => listHeldCoupons(deps(), actor, owner) },
  { name: 'createUser', allowed: ['admin'], run: (actor) => createUser(shop.uow, actor, 'new') },
  { name: 'createProduct', allowed: ['admin'], run: (actor) => createProduct(shop.uow, actor, { name: 'new', price: 1, stock: 1 }) },
  { name: 'updateProduct', allowed: ['admin'], run: (actor) => updateProduct(shop.uow, actor, productId, { price: 1 }) },
  {
    name: 'createCoupon',
    allowed: ['admin'],
    run: (actor) => createCoupon(shop.uow, actor, { name: 'new', discountType: 'FIXED', discountValue: 1, totalQuantity: 1 }),
  },
  // Even to the owner, for themself: a grant skips first-come issuance, so it is an operator's act.
  { name: 'grantCoupon', allowed: ['admin'], run: (actor) => grantCoupon(deps(), actor, couponId, owner) },
  { name: 'listEvents', allowed: ['admin'], run: (actor) => listEvents(outbox, actor, 'pending', 20, null) },
  { name: 'redeliverEvent', allowed: ['admin'], run: (actor) => redeliverEvent(deps(), actor, 'e-1') },
];

const cases = useCases.flatMap((u) =>
  (['owner', 'stranger', 'admin'] as const).map((who) => ({ ...u, who, allowedHere: u.allowed.includes(who) })),
);

describe.each(cases)('$name by the $who', ({ run, who, allowedHere }) => {
  test(allowedHere ? 'is allowed' : 'is FORBIDDEN and changes nothing', async () => {
    const before = shop.snapshot();
    const outcome = await run(actorOf(who)).then(
      () => 'done',
      (e: { code?: string }) => e.code ?? String(e),
    );
    if (allowedHere) {
      expect(outcome).toBe('done');
    } else {
      expect(outcome).toBe('FORBIDDEN');
      expect(shop.state).toEqual(before);
    }
  });
});

describe('the order of the checks', () => {
  test("an unknown order is ORDER_NOT_FOUND to a stranger too: its owner is known only once it is read", async () => {
    await expect(getOrder(shop.reads, user(stranger), 'no-such-order')).rejects.toMatchObject({ code: 'ORDER_NOT_FOUND' });
    await expect(cancelOrder(deps(), { actor: user(stranger), orderId: 'no-such-order' })).rejects.toMatchObject({ code: 'ORDER_NOT_FOUND' });
  });

  test("a stranger asking about a user who does not exist is FORBIDDEN, not told whether the user exists", async () => {
    const nobody = 404_404;
    const asStranger = user(stranger);
    for (const attempt of [
      listOrders(shop.reads, asStranger, nobody, 20, null),
      getBalance(shop.reads, asStranger, nobody),
      balanceHistory(shop.reads, asStranger, nobody, 20, null),
      listHeldCoupons(deps(), asStranger, nobody),
      chargeUserBalance(deps(), { actor: asStranger, userId: nobody, amount: 1 }),
      placeOrder(deps(), { actor: asStranger, userId: nobody, items: [{ productId, quantity: 1 }] }),
      issueCoupon(deps(), asStranger, couponId, nobody),
    ]) {
      await expect(attempt).rejects.toMatchObject({ code: 'FORBIDDEN' });
    }
  });

  test("the owner's Idempotency-Key does not let a stranger replay the owner's order", async () => {
    const cmd = { userId: owner, items: [{ productId, quantity: 1 }], idempotencyKey: 'k' };
    await placeOrder(deps(), { actor: user(owner), ...cmd });
    const before = shop.snapshot();
    await expect(placeOrder(deps(), { actor: user(stranger), ...cmd })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(placeOrder(deps(), { actor: admin, ...cmd })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(shop.state).toEqual(before);
  });
});
