export interface BestSeller {
  readonly productId: number;
  readonly name: string;
  readonly price: number;
  readonly soldQuantity: number;
}

/** Units sold in PAID orders, read from a rollup kept off the order path. */
export interface SalesStats {
  /** Best sellers since `from`, by quantity, ties by productId ascending. */
  top(from: Date, limit: number): Promise<BestSeller[]>;
}
