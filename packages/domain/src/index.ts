export * from './errors.ts';
export * from './money.ts';
export * from './balance.ts';
export * from './stock.ts';
export * from './coupon.ts';
export * from './order.ts';
export * from './events.ts';
export * from './order-decision.ts';
