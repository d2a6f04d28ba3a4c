import type { UnitOfWork, User } from '../ports/index.ts';

export function createUser(uow: UnitOfWork, name: string): Promise<User> {
  return uow.run((tx) => tx.users.create(name));
}
