import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createCoupon, createProduct, createUser, grantCoupon, updateProduct } from '@shop/application';
import type { HttpDeps } from '../context.ts';
import type { PrincipalOf } from '../principal.ts';
import { presentCoupon, presentHeldCoupon } from '../presenters.ts';
import {
  CouponIdParams,
  CouponResponse,
  CreateCouponBody,
  CreateProductBody,
  CreateUserBody,
  GrantCouponBody,
  ProductIdParams,
  ProductResponse,
  UpdateProductBody,
  UserCouponResponse,
  UserResponse,
} from '../schemas.ts';
import { errorResponses, USER_SECURITY } from './docs.ts';

const date = (s: string | undefined) => (s === undefined ? undefined : new Date(s));

export const adminRoutes =
  (deps: HttpDeps, principalOf: PrincipalOf): FastifyPluginAsyncZod =>
  async (app) => {
    const common = { tags: ['admin'], security: USER_SECURITY };

    app.post(
      '/admin/users',
      {
        schema: {
          ...common,
          operationId: 'createUser',
          summary: 'Create a user',
          body: CreateUserBody,
          response: { 201: UserResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const actor = await principalOf(req);
        return reply.code(201).send(await createUser(deps.uow, actor, req.body.name));
      },
    );

    app.post(
      '/admin/products',
      {
        schema: {
          ...common,
          operationId: 'createProduct',
          summary: 'Create a product',
          body: CreateProductBody,
          response: { 201: ProductResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const actor = await principalOf(req);
        return reply.code(201).send(await createProduct(deps.uow, actor, req.body));
      },
    );

    app.patch(
      '/admin/products/:productId',
      {
        schema: {
          ...common,
          operationId: 'updateProduct',
          summary: "Change a product's price or stock",
          params: ProductIdParams,
          body: UpdateProductBody,
          response: { 200: ProductResponse, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        try {
          return await updateProduct(deps.uow, actor, req.params.productId, req.body);
        } finally {
          deps.productChanged?.(req.params.productId); // also when the answer was lost after its commit
        }
      },
    );

    app.post(
      '/admin/coupons',
      {
        schema: {
          ...common,
          operationId: 'createCoupon',
          summary: 'Create a coupon',
          body: CreateCouponBody,
          response: { 201: CouponResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const actor = await principalOf(req);
        const coupon = await createCoupon(deps.uow, actor, {
          ...req.body,
          issueStartsAt: date(req.body.issueStartsAt),
          issueEndsAt: date(req.body.issueEndsAt),
        });
        return reply.code(201).send(presentCoupon(coupon));
      },
    );

    app.post(
      '/admin/coupons/:couponId/grant',
      {
        schema: {
          ...common,
          operationId: 'grantCoupon',
          summary: 'Give a coupon to a user outside first-come issuance',
          params: CouponIdParams,
          body: GrantCouponBody,
          response: { 201: UserCouponResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const actor = await principalOf(req);
        const held = await grantCoupon(deps, actor, req.params.couponId, req.body.userId);
        return reply.code(201).send(presentHeldCoupon(held));
      },
    );
  };
