import { DomainError, MAX_PRICE, MAX_STOCK, type Won } from '@shop/domain';
import { assertAdmin, type Actor } from '../authorization.ts';
import type { Page, Product, ReadStore, UnitOfWork } from '../ports/index.ts';

function assertProductFields(change: { price?: Won | undefined; stock?: number | undefined }): void {
  if (change.price !== undefined && (!Number.isSafeInteger(change.price) || change.price < 0 || change.price > MAX_PRICE)) {
    throw new DomainError('VALIDATION_ERROR', `price must be an integer from 0 to ${MAX_PRICE}`);
  }
  if (change.stock !== undefined && (!Number.isSafeInteger(change.stock) || change.stock < 0 || change.stock > MAX_STOCK)) {
    throw new DomainError('VALIDATION_ERROR', `stock must be an integer from 0 to ${MAX_STOCK}`);
  }
}

export async function createProduct(
  uow: UnitOfWork,
  actor: Actor,
  input: { name: string; price: Won; stock: number },
): Promise<Product> {
  assertAdmin(actor);
  assertProductFields(input);
  return uow.run((tx) => tx.products.create(input));
}

/** Setting stock is an absolute correction by an operator; it waits for in-flight orders' row locks. */
export async function updateProduct(
  uow: UnitOfWork,
  actor: Actor,
  productId: number,
  change: { price?: Won | undefined; stock?: number | undefined },
): Promise<Product> {
  assertAdmin(actor);
  assertProductFields(change);
  const product = await uow.run((tx) => tx.products.update(productId, change));
  if (!product) throw new DomainError('PRODUCT_NOT_FOUND', `no product with id ${productId}`);
  return product;
}

export async function getProduct(reads: ReadStore, productId: number): Promise<Product> {
  const product = await reads.product(productId);
  if (!product) throw new DomainError('PRODUCT_NOT_FOUND', `no product with id ${productId}`);
  return product;
}

export function listProducts(reads: ReadStore, limit: number, cursor: string | null): Promise<Page<Product>> {
  return reads.products(limit, cursor);
}
