import { beforeEach, describe, expect, test } from 'vitest';
import { balanceHistory, chargeUserBalance, getBalance } from '@shop/application';
import { MAX_BALANCE } from '@shop/domain';
import { admin } from './actors.ts';
import { ManualClock, MemoryShop } from './fakes.ts';

const NOW = new Date('2026-11-24T09:00:00.000Z');
let shop: MemoryShop;
let deps: { uow: MemoryShop['uow']; clock: ManualClock };

beforeEach(() => {
  shop = new MemoryShop();
  deps = { uow: shop.uow, clock: new ManualClock(NOW) };
});

describe('chargeUserBalance', () => {
  test('adds to the balance and writes the ledger', async () => {
    const userId = shop.addUser(1_000);
    expect(await chargeUserBalance(deps, { actor: admin, userId, amount: 500 })).toEqual({ userId, balance: 1_500 });
    expect(shop.state.ledger).toEqual([
      { userId, type: 'CHARGE', amount: 500, balanceAfter: 1_500, orderId: null, createdAt: NOW },
    ]);
    expect(await getBalance(shop.reads, admin, userId)).toEqual({ userId, balance: 1_500 });
  });

  test('refuses to pass the upper limit and changes nothing', async () => {
    const userId = shop.addUser(MAX_BALANCE - 100);
    const before = shop.snapshot();
    await expect(chargeUserBalance(deps, { actor: admin, userId, amount: 101 })).rejects.toMatchObject({
      code: 'BALANCE_LIMIT_EXCEEDED',
    });
    expect(shop.state).toEqual(before);
  });

  test('USER_NOT_FOUND for an unknown user, before the amount is judged', async () => {
    await expect(chargeUserBalance(deps, { actor: admin, userId: 404, amount: 0 })).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
  });

  test('a retried charge with the same key counts once; a different amount is IDEMPOTENCY_KEY_REUSED', async () => {
    const userId = shop.addUser(0);
    const first = await chargeUserBalance(deps, { actor: admin, userId, amount: 700, idempotencyKey: 'top-up-1' });
    expect(await chargeUserBalance(deps, { actor: admin, userId, amount: 700, idempotencyKey: 'top-up-1' })).toEqual(first);
    expect(shop.state.users.get(userId)!.balance).toBe(700);
    expect(shop.state.ledger).toHaveLength(1);
    await expect(chargeUserBalance(deps, { actor: admin, userId, amount: 701, idempotencyKey: 'top-up-1' })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    // A refused charge stores nothing: its key stays free for a retry, whatever its amount.
    const capped = shop.addUser(MAX_BALANCE - 100);
    await expect(chargeUserBalance(deps, { actor: admin, userId: capped, amount: 101, idempotencyKey: 'top-up-2' })).rejects.toMatchObject({
      code: 'BALANCE_LIMIT_EXCEEDED',
    });
    const retried = await chargeUserBalance(deps, { actor: admin, userId: capped, amount: 100, idempotencyKey: 'top-up-2' });
    expect(retried).toEqual({ userId: capped, balance: MAX_BALANCE });
    expect(await chargeUserBalance(deps, { actor: admin, userId: capped, amount: 100, idempotencyKey: 'top-up-2' })).toEqual(retried);
    // Without a key every charge counts.
    await chargeUserBalance(deps, { actor: admin, userId, amount: 700 });
    await chargeUserBalance(deps, { actor: admin, userId, amount: 700 });
    expect(shop.state.users.get(userId)!.balance).toBe(2_100);
  });
});

describe('balance reads', () => {
  test('an unknown user is USER_NOT_FOUND, not an empty answer', async () => {
    await expect(getBalance(shop.reads, admin, 404)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    await expect(balanceHistory(shop.reads, admin, 404, 20, null)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
  });

  test('history lists the ledger newest first', async () => {
    const userId = shop.addUser(0);
    await chargeUserBalance(deps, { actor: admin, userId, amount: 1 });
    await chargeUserBalance(deps, { actor: admin, userId, amount: 2 });
    const history = await balanceHistory(shop.reads, admin, userId, 20, null);
    expect(history.items.map((e) => e.amount)).toEqual([2, 1]);
  });
});
