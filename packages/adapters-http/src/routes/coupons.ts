import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { issueCoupon, listHeldCoupons } from '@shop/application';
import type { HttpDeps } from '../context.ts';
import type { PrincipalOf } from '../principal.ts';
import { presentHeldCoupon } from '../presenters.ts';
import { CouponIdParams, GrantCouponBody, UserCouponList, UserCouponResponse, UserIdParams } from '../schemas.ts';
import { errorResponses, USER_SECURITY } from './docs.ts';

export const couponRoutes =
  (deps: HttpDeps, principalOf: PrincipalOf): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/coupons/:couponId/issue',
      {
        schema: {
          tags: ['coupons'],
          operationId: 'issueCoupon',
          summary: "Claim a coupon: first come, first served, one per user (the user's own token; an admin token is 403)",
          security: USER_SECURITY,
          params: CouponIdParams,
          body: GrantCouponBody,
          response: { 201: UserCouponResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const actor = await principalOf(req);
        const held = await issueCoupon(deps, actor, req.params.couponId, req.body.userId);
        return reply.code(201).send(presentHeldCoupon(held));
      },
    );

    app.get(
      '/users/:userId/coupons',
      {
        schema: {
          tags: ['coupons'],
          operationId: 'listUserCoupons',
          summary: 'Coupons a user holds',
          security: USER_SECURITY,
          params: UserIdParams,
          response: { 200: UserCouponList, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        return { items: (await listHeldCoupons(deps, actor, req.params.userId)).map(presentHeldCoupon) };
      },
    );
  };
