export * from './ports/index.ts';
export * from './idempotency.ts';
export * from './use-cases/place-order.ts';
export * from './use-cases/balance.ts';
export * from './use-cases/catalog.ts';
export * from './use-cases/coupons.ts';
export * from './use-cases/users.ts';
export * from './use-cases/orders.ts';
