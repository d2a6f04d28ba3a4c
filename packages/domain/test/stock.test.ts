import { describe, expect, test } from 'vitest';
import { DomainError, allocateStock } from '../src/index.ts';

const products = [
  { productId: 1, price: 1_000, stock: 5 },
  { productId: 2, price: 250, stock: 0 },
  { productId: 3, price: 99, stock: 10 },
];

describe('allocateStock', () => {
  test('takes every line at the price of this moment', () => {
    expect(
      allocateStock(
        [
          { productId: 3, quantity: 10 },
          { productId: 1, quantity: 2 },
        ],
        products,
      ),
    ).toEqual([
      { productId: 3, quantity: 10, unitPrice: 99, lineAmount: 990 },
      { productId: 1, quantity: 2, unitPrice: 1_000, lineAmount: 2_000 },
    ]);
  });

  test('a line may take the whole stock, not one unit more', () => {
    expect(allocateStock([{ productId: 1, quantity: 5 }], products)[0]!.quantity).toBe(5);
    expect(() => allocateStock([{ productId: 1, quantity: 6 }], products)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_STOCK' }),
    );
    expect(() => allocateStock([{ productId: 2, quantity: 1 }], products)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_STOCK' }),
    );
  });

  test('reports every unknown product before any shortage, whatever the line order', () => {
    let error: unknown;
    try {
      allocateStock(
        [
          { productId: 2, quantity: 1 },
          { productId: 7, quantity: 1 },
          { productId: 9, quantity: 1 },
        ],
        products,
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'PRODUCT_NOT_FOUND' });
    expect((error as Error).message).toContain('7, 9');
  });
});
