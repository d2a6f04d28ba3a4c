import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { cancelOrder, getOrderWithRefunds, listOrders, placeOrder, refundOrder } from '@shop/application';
import type { HttpDeps } from '../context.ts';
import type { PrincipalOf } from '../principal.ts';
import { presentOrder, presentOrderPage, presentRefund } from '../presenters.ts';
import {
  IdempotencyHeaders,
  NoBody,
  OrderIdParams,
  OrderPage,
  OrderResponse,
  OrderWithRefundsResponse,
  PageQuery,
  PlaceOrderBody,
  RefundBody,
  RefundResponse,
  UserIdParams,
} from '../schemas.ts';
import { errorResponses, USER_SECURITY } from './docs.ts';
import { clientGone } from '../client-gone.ts';
import { JSON_CONTENT_TYPE, keyedAnswers } from '../keyed-answers.ts';

export const orderRoutes =
  (deps: HttpDeps, principalOf: PrincipalOf): FastifyPluginAsyncZod =>
  async (app) => {
    // The app's serializer compiler (app.ts), as the route's 201 gets it: a kept body is the one the route would send.
    const compile = app.serializerCompiler;
    if (!compile) throw new Error('orderRoutes needs the app to set its serializer compiler first');
    const placed = { status: '201', schema: OrderResponse } as const;
    const serialize = compile({ schema: placed.schema, method: 'POST', url: '/orders', httpStatus: placed.status });
    const keyedAnswer = keyedAnswers((order) => serialize(presentOrder(order)));
    app.post(
      '/orders',
      {
        schema: {
          tags: ['orders'],
          operationId: 'placeOrder',
          summary: "Place an order and pay for it from the balance (the user's own token; an admin token is 403)",
          security: USER_SECURITY,
          headers: IdempotencyHeaders,
          body: PlaceOrderBody,
          response: { [placed.status]: placed.schema, ...errorResponses },
        },
      },
      async (req, reply) => {
        // Before anything is awaited: a client gone while it is authenticated is gone too.
        const signal = clientGone(reply);
        const actor = await principalOf(req);
        const { order, replayed } = await placeOrder(deps, {
          actor,
          userId: req.body.userId,
          items: req.body.items,
          couponId: req.body.couponId,
          idempotencyKey: req.headers['idempotency-key'],
          signal,
        });
        if (replayed) reply.header('idempotent-replayed', 'true');
        if (req.headers['idempotency-key'] === undefined) return reply.code(201).send(presentOrder(order));
        // Already JSON: sent as it is, past the schema's serializer (whose typing wants the object).
        return (reply as FastifyReply).code(201).header('content-type', JSON_CONTENT_TYPE).send(keyedAnswer(order));
      },
    );

    app.get(
      '/orders/:orderId',
      {
        schema: {
          tags: ['orders'],
          operationId: 'getOrder',
          summary: 'One order with its partial refunds (its owner or an admin)',
          security: USER_SECURITY,
          params: OrderIdParams,
          response: { 200: OrderWithRefundsResponse, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        const { order, refunds } = await getOrderWithRefunds(deps.reads, actor, req.params.orderId);
        return { ...presentOrder(order), refunds: refunds.map(presentRefund) };
      },
    );

    app.post(
      '/orders/:orderId/cancel',
      {
        schema: {
          tags: ['orders'],
          operationId: 'cancelOrder',
          summary: 'Cancel an order and refund what is left: stock, payment and coupon copy given back (its owner or an admin)',
          description:
            'A PAID or PARTIALLY_REFUNDED order placed at most ORDER_CANCEL_DAYS days ago (default 7) becomes CANCELLED in one ' +
            'atomic write: the stock of every unit not yet refunded restored, paidAmount − refundedAmount credited to the balance ' +
            '(a REFUND ledger entry, never refused by the balance cap), the coupon copy usable again, and one order.cancelled ' +
            'event recorded. Concurrent cancels refund once. 409 ORDER_NOT_CANCELLABLE when it is already cancelled or too old.',
          security: USER_SECURITY,
          headers: IdempotencyHeaders,
          body: NoBody,
          params: OrderIdParams,
          response: { 200: OrderResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        // Before anything is awaited: a client gone while it is authenticated is gone too.
        const signal = clientGone(reply);
        const actor = await principalOf(req);
        const { order, replayed } = await cancelOrder(deps, {
          actor,
          orderId: req.params.orderId,
          idempotencyKey: req.headers['idempotency-key'],
          signal,
        });
        if (replayed) reply.header('idempotent-replayed', 'true');
        return presentOrder(order);
      },
    );

    app.post(
      '/orders/:orderId/refunds',
      {
        schema: {
          tags: ['orders'],
          operationId: 'refundOrder',
          summary: 'Refund some units of an order (its owner or an admin)',
          description:
            'A PAID or PARTIALLY_REFUNDED order placed at most ORDER_CANCEL_DAYS days ago gives back the listed units in one ' +
            "atomic write: their stock restored, the refund's amount credited (a REFUND ledger entry), the order's " +
            'refundedAmount and refundedQuantity raised, its status PARTIALLY_REFUNDED, or CANCELLED once every unit is back ' +
            '(the coupon copy then usable again), and one order.refunded event recorded. The order\'s refundedAmount is ' +
            'floor(paidAmount × G ÷ totalAmount), G the gross of every unit refunded so far, so its refunds add up to exactly ' +
            'paidAmount. Concurrent refunds never refund a unit twice.',
          security: USER_SECURITY,
          headers: IdempotencyHeaders,
          params: OrderIdParams,
          body: RefundBody,
          response: { 201: RefundResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        // Before anything is awaited: a client gone while it is authenticated is gone too.
        const signal = clientGone(reply);
        const actor = await principalOf(req);
        const { refund, order, replayed } = await refundOrder(deps, {
          actor,
          orderId: req.params.orderId,
          items: req.body.items,
          idempotencyKey: req.headers['idempotency-key'],
          signal,
        });
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.code(201).send({ ...presentRefund(refund), order: presentOrder(order) });
      },
    );

    app.get(
      '/users/:userId/orders',
      {
        schema: {
          tags: ['orders'],
          operationId: 'listUserOrders',
          summary: "A user's orders, newest first",
          security: USER_SECURITY,
          params: UserIdParams,
          querystring: PageQuery,
          response: { 200: OrderPage, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        return presentOrderPage(await listOrders(deps.reads, actor, req.params.userId, req.query.limit, req.query.cursor ?? null));
      },
    );
  };
