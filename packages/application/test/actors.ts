import type { Actor } from '@shop/application';

/** The actors of the unit tests: an operator, and a user acting for themself. */
export const admin: Actor = { role: 'admin' };
export const user = (userId: number): Actor => ({ role: 'user', userId });
