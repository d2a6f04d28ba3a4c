import { DomainError } from './errors.ts';
import type { Won } from './money.ts';

export const MAX_STOCK = 1_000_000_000;

export interface StockedProduct {
  readonly productId: number;
  readonly price: Won;
  readonly stock: number;
}

export interface RequestedLine {
  readonly productId: number;
  readonly quantity: number;
}

export interface AllocatedLine {
  readonly productId: number;
  readonly quantity: number;
  readonly unitPrice: Won;
  readonly lineAmount: Won;
}

/**
 * Takes stock for every line of an order at the prices of this moment, or for none of them.
 * Every unknown product is reported before any shortage, as the contract orders the errors.
 */
export function allocateStock(lines: readonly RequestedLine[], products: readonly StockedProduct[]): AllocatedLine[] {
  const byId = new Map(products.map((p) => [p.productId, p]));
  const missing = lines.filter((l) => !byId.has(l.productId)).map((l) => l.productId);
  if (missing.length > 0) {
    throw new DomainError('PRODUCT_NOT_FOUND', `no product with id ${missing.join(', ')}`);
  }
  return lines.map((line) => {
    const product = byId.get(line.productId)!;
    if (line.quantity > product.stock) {
      throw new DomainError(
        'OUT_OF_STOCK',
        `product ${line.productId} has ${product.stock} in stock, ${line.quantity} requested`,
      );
    }
    return {
      productId: line.productId,
      quantity: line.quantity,
      unitPrice: product.price,
      lineAmount: product.price * line.quantity,
    };
  });
}
