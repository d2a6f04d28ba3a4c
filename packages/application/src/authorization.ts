import { DomainError } from '@shop/domain';

/**
 * Who a request acts as, once an adapter has authenticated it: a user, or an operator (admin).
 * Every use case that touches a user's data or the shop's setup takes one and checks it with the
 * rules below, so who may do what is decided here and not by whichever adapter calls.
 */
export type Actor = { readonly role: 'user'; readonly userId: number } | { readonly role: 'admin' };

/**
 * Reading a user's data, charging their balance, cancelling their order: the user themself, or an
 * admin (operators look after any account).
 */
export function assertActsFor(actor: Actor, userId: number): void {
  if (actor.role === 'user' && actor.userId !== userId) {
    throw new DomainError('FORBIDDEN', `user ${actor.userId} may act only for themself, not for user ${userId}`);
  }
}

/**
 * Buying (placing an order, claiming a coupon) is the user's own act: an admin may not buy in
 * anyone's name, so a purchase is always one its buyer made.
 */
export function assertBuysAs(actor: Actor, userId: number, act: string): void {
  if (actor.role === 'admin') throw new DomainError('FORBIDDEN', `${act} is the user's own act; an admin cannot do it for them`);
  assertActsFor(actor, userId);
}

/** Setting up the shop (users, products, coupons) and operating it (events, metrics). */
export function assertAdmin(actor: Actor): void {
  if (actor.role !== 'admin') throw new DomainError('FORBIDDEN', 'only an admin may do this');
}
