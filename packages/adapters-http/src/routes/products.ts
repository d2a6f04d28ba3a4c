import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { getProduct, listProducts } from '@shop/application';
import { CATALOG_CACHING_DOC, catalogCaching } from '../cache.ts';
import type { HttpDeps } from '../context.ts';
import { BestSellersQuery, BestSellersResponse, PageQuery, ProductIdParams, ProductPage, ProductResponse } from '../schemas.ts';
import { errorResponses, PUBLIC_SECURITY } from './docs.ts';

export const productRoutes =
  (deps: HttpDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/products',
      {
        onSend: catalogCaching,
        schema: {
          tags: ['products'],
          operationId: 'listProducts',
          summary: 'Products by id',
          description: CATALOG_CACHING_DOC,
          security: PUBLIC_SECURITY,
          querystring: PageQuery,
          response: { 200: ProductPage, ...errorResponses },
        },
      },
      (req) => listProducts(deps.reads, req.query.limit, req.query.cursor ?? null),
    );

    app.get(
      '/products/top',
      {
        onSend: catalogCaching,
        schema: {
          tags: ['products'],
          operationId: 'getBestSellers',
          summary: 'Best sellers by units in PAID orders of the last days (fresh within seconds)',
          description: CATALOG_CACHING_DOC,
          security: PUBLIC_SECURITY,
          querystring: BestSellersQuery,
          response: { 200: BestSellersResponse, ...errorResponses },
        },
      },
      async (req) => {
        const top = await deps.bestSellers(req.query.days, req.query.limit);
        return { from: top.from.toISOString(), to: top.to.toISOString(), items: [...top.items] };
      },
    );

    app.get(
      '/products/:productId',
      {
        onSend: catalogCaching,
        schema: {
          tags: ['products'],
          operationId: 'getProduct',
          summary: 'One product',
          description: CATALOG_CACHING_DOC,
          security: PUBLIC_SECURITY,
          params: ProductIdParams,
          response: { 200: ProductResponse, ...errorResponses },
        },
      },
      (req) => getProduct(deps.reads, req.params.productId),
    );
  };
