import { openDatabase, pgOrderBook, pgReadStore, PgUnitOfWork } from '@shop/adapters-postgres';
import { placeOrder, systemClock, uuidV7 } from '@shop/application';
import { isDomainError } from '@shop/domain';
import { serveOnePlan } from './child.ts';
import { closedLoop, type Attempt } from './closed-loop.ts';
import { plainRowLockOrder } from './plain-row-lock.ts';
import { sendEdge, type CeilingPlan, type LoadResult, type Progress } from './protocol.ts';
import { pick, pickDistinct, seededRandom } from './random.ts';

const STATUS: Record<string, number> = { USER_NOT_FOUND: 404, PRODUCT_NOT_FOUND: 404 };

/**
 * The database's own limit for one order: the service's order use case over the Postgres
 * adapter — the same SQL statements, the same transaction — with as many concurrent callers as
 * the HTTP load has connections, sharing a pg pool as large as the service's, and no HTTP, JSON
 * or auth in between. Or, for comparison, the
 * plain row-lock transaction.
 */
async function run(plan: CeilingPlan): Promise<LoadResult> {
  const db = openDatabase({ connectionString: plan.databaseUrl, max: plan.poolSize, applicationName: 'bench-ceiling' });
  const deps = { uow: new PgUnitOfWork(db.kysely), book: pgOrderBook(db.kysely, { writesInFlight: plan.orderWrites }), reads: pgReadStore(db.kysely), clock: systemClock, ids: uuidV7 };
  const rand = seededRandom(plan.seed);

  const serviceSql = async (userId: number, items: Array<{ productId: number; quantity: number }>): Promise<Attempt> => {
    try {
      await placeOrder(deps, { actor: { role: 'user', userId }, userId, items });
      return { status: 201, code: '', isOrder: true };
    } catch (err) {
      if (!isDomainError(err)) throw err;
      return { status: STATUS[err.code] ?? 400, code: err.code, isOrder: true };
    }
  };

  const attempt = (): Promise<Attempt> => {
    const userId = pick(rand, plan.userIds);
    if (plan.workload === 'hot-product') {
      const productId = plan.productIds[0]!;
      return plan.variant === 'plain-row-lock'
        ? plainRowLockOrder(db.pool, userId, productId)
        : serviceSql(userId, [{ productId, quantity: 1 }]);
    }
    return serviceSql(userId, pickDistinct(rand, plan.productIds, 3).map((productId) => ({ productId, quantity: 1 })));
  };

  // Open every connection before measuring, as the service's pool and the load's sockets are.
  await Promise.all(Array.from({ length: plan.poolSize }, () => db.pool.query('SELECT 1')));
  const { samples, windowMs, failures } = await closedLoop(
    plan.shape,
    plan.connections,
    attempt,
    (done, total, phase) => process.send!({ type: 'progress', done, total, phase } satisfies Progress),
    sendEdge,
  );
  await db.close();
  return { samples, windowMs, transportErrors: failures };
}

serveOnePlan<CeilingPlan>('ceiling process', run);
