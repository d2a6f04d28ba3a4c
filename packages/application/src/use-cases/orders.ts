import { DomainError, type Order } from '@shop/domain';
import type { Page, ReadStore } from '../ports/index.ts';

export async function getOrder(reads: ReadStore, orderId: string): Promise<Order> {
  const order = await reads.order(orderId);
  if (!order) throw new DomainError('ORDER_NOT_FOUND', `no order with id ${orderId}`);
  return order;
}

export async function listOrders(
  reads: ReadStore,
  userId: number,
  limit: number,
  cursor: string | null,
): Promise<Page<Order>> {
  if (!(await reads.userExists(userId))) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
  return reads.ordersOf(userId, limit, cursor);
}
