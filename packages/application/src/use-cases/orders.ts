import { DomainError, type Order, type RefundRecord } from '@shop/domain';
import { assertActsFor, type Actor } from '../authorization.ts';
import type { Page, ReadStore } from '../ports/index.ts';

/** Its owner or an admin. An unknown order is ORDER_NOT_FOUND before anyone is refused (the contract's order). */
export async function getOrder(reads: ReadStore, actor: Actor, orderId: string): Promise<Order> {
  const order = await reads.order(orderId);
  if (!order) throw new DomainError('ORDER_NOT_FOUND', `no order with id ${orderId}`);
  assertActsFor(actor, order.userId);
  return order;
}

/** One order with its partial refunds, oldest first: what GET /orders/{orderId} answers. */
export async function getOrderWithRefunds(reads: ReadStore, actor: Actor, orderId: string): Promise<{ order: Order; refunds: RefundRecord[] }> {
  const order = await getOrder(reads, actor, orderId);
  return { order, refunds: order.status === 'PAID' ? [] : await reads.refunds(orderId) };
}

export async function listOrders(
  reads: ReadStore,
  actor: Actor,
  userId: number,
  limit: number,
  cursor: string | null,
): Promise<Page<Order>> {
  assertActsFor(actor, userId);
  if (!(await reads.userExists(userId))) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
  return reads.ordersOf(userId, limit, cursor);
}
