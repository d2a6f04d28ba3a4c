import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { balanceHistory, chargeUserBalance, getBalance } from '@shop/application';
import type { HttpDeps } from '../context.ts';
import type { PrincipalOf } from '../principal.ts';
import { presentLedgerPage } from '../presenters.ts';
import { BalanceResponse, ChargeBody, IdempotencyHeaders, LedgerPage, PageQuery, UserIdParams } from '../schemas.ts';
import { errorResponses, USER_SECURITY } from './docs.ts';

export const balanceRoutes =
  (deps: HttpDeps, principalOf: PrincipalOf): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/users/:userId/balance',
      {
        schema: {
          tags: ['balance'],
          operationId: 'getBalance',
          summary: "A user's balance",
          security: USER_SECURITY,
          params: UserIdParams,
          response: { 200: BalanceResponse, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        return getBalance(deps.reads, actor, req.params.userId);
      },
    );

    app.post(
      '/users/:userId/balance/charge',
      {
        schema: {
          tags: ['balance'],
          operationId: 'chargeBalance',
          summary: 'Top up a balance',
          security: USER_SECURITY,
          params: UserIdParams,
          headers: IdempotencyHeaders,
          body: ChargeBody,
          response: { 200: BalanceResponse, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        return chargeUserBalance(deps, {
          actor,
          userId: req.params.userId,
          amount: req.body.amount,
          idempotencyKey: req.headers['idempotency-key'],
        });
      },
    );

    app.get(
      '/users/:userId/balance/history',
      {
        schema: {
          tags: ['balance'],
          operationId: 'getBalanceHistory',
          summary: 'Balance ledger, newest first',
          security: USER_SECURITY,
          params: UserIdParams,
          querystring: PageQuery,
          response: { 200: LedgerPage, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        return presentLedgerPage(await balanceHistory(deps.reads, actor, req.params.userId, req.query.limit, req.query.cursor ?? null));
      },
    );
  };
