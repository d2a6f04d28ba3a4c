import { DomainError, chargeBalance, type Won } from '@shop/domain';
import { fingerprint, once } from '../idempotency.ts';
import { assertActsFor, type Actor } from '../authorization.ts';
import type { Clock, LedgerEntry, Page, ReadStore, UnitOfWork } from '../ports/index.ts';

export interface BalanceView {
  readonly userId: number;
  readonly balance: Won;
}

export interface ChargeCommand {
  /** The user themself or an admin. */
  readonly actor: Actor;
  readonly userId: number;
  readonly amount: Won;
  readonly idempotencyKey?: string | undefined;
}

/** Tops up a balance; concurrent charges serialise on the balance row, so every one counts. */
export async function chargeUserBalance(
  deps: { uow: UnitOfWork; clock: Clock },
  cmd: ChargeCommand,
): Promise<BalanceView> {
  assertActsFor(cmd.actor, cmd.userId);
  const idem = cmd.idempotencyKey ? { userId: cmd.userId, key: cmd.idempotencyKey } : undefined;
  const print = fingerprint('POST /users/:userId/balance/charge', { userId: cmd.userId, amount: cmd.amount });
  return deps.uow.run((tx) =>
    once<BalanceView>(
      tx,
      idem,
      print,
      { store: (view) => view, replay: (stored) => stored as BalanceView },
      async () => {
        const balance = await tx.balances.lock(cmd.userId);
        if (balance === null) throw new DomainError('USER_NOT_FOUND', `no user with id ${cmd.userId}`);
        const balanceAfter = chargeBalance(balance, cmd.amount);
        await tx.balances.record(cmd.userId, {
          type: 'CHARGE',
          amount: cmd.amount,
          balanceAfter,
          orderId: null,
          createdAt: deps.clock.now(),
        });
        return { userId: cmd.userId, balance: balanceAfter };
      },
    ),
  );
}

export async function getBalance(reads: ReadStore, actor: Actor, userId: number): Promise<BalanceView> {
  assertActsFor(actor, userId);
  const balance = await reads.balance(userId);
  if (balance === null) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
  return { userId, balance };
}

export async function balanceHistory(
  reads: ReadStore,
  actor: Actor,
  userId: number,
  limit: number,
  cursor: string | null,
): Promise<Page<LedgerEntry>> {
  assertActsFor(actor, userId);
  if (!(await reads.userExists(userId))) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
  return reads.ledger(userId, limit, cursor);
}
