import { assertAdmin, type Actor } from '../authorization.ts';
import type { UnitOfWork, User } from '../ports/index.ts';

export async function createUser(uow: UnitOfWork, actor: Actor, name: string): Promise<User> {
  assertAdmin(actor);
  return uow.run((tx) => tx.users.create(name));
}
