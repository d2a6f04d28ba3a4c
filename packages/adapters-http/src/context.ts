import type { FastifyRequest } from 'fastify';
import type { Clock, IdGenerator, ReadStore, UnitOfWork } from '@shop/application';
import { authenticate, type Principal } from './auth.ts';

export interface HttpDeps {
  readonly uow: UnitOfWork;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly authSecret: Uint8Array;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
}

/** Authentication runs in the handler, after schema validation, as the contract orders errors. */
export const principalOf = (deps: HttpDeps, req: FastifyRequest): Promise<Principal> =>
  authenticate(req.headers.authorization, deps.authSecret);
