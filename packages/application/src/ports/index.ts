export * from './clock.ts';
export * from './ids.ts';
export * from './records.ts';
export * from './transaction.ts';
export * from './read-store.ts';
export * from './outbox.ts';
export * from './coupon-issuance.ts';
export * from './sales.ts';
