import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { listHeldCoupons } from '@shop/application';
import { assertActsFor } from '../auth.ts';
import { principalOf, type HttpDeps } from '../context.ts';
import { presentHeldCoupon } from '../presenters.ts';
import { UserCouponList, UserIdParams } from '../schemas.ts';
import { errorResponses, USER_SECURITY } from './docs.ts';

export const couponRoutes =
  (deps: HttpDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/users/:userId/coupons',
      {
        schema: {
          tags: ['coupons'],
          summary: 'Coupons a user holds',
          security: USER_SECURITY,
          params: UserIdParams,
          response: { 200: UserCouponList, ...errorResponses },
        },
      },
      async (req) => {
        assertActsFor(await principalOf(deps, req), req.params.userId);
        return { items: (await listHeldCoupons(deps, req.params.userId)).map(presentHeldCoupon) };
      },
    );
  };
