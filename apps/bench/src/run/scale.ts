import { performance } from 'node:perf_hooks';
import { BIG_TABLES, drawIds, historyTableSizes, orderPathPlans, referenceViolations, seedHistory, type OrderPathPlan } from '@shop/adapters-postgres/bench';
import { createMeter } from './measure.ts';
import { section, table } from './report.ts';
import { seededRandom } from './stats.ts';
import { seedFixture, startTarget, type Target } from './target.ts';

/** `pnpm bench --scale`: a year of data seeded into the database (the adapter's history-seed.ts), the load's users and products drawn from it. */
export type ScaleInfo = Awaited<ReturnType<typeof seedAtScale>>['scale'];

/** Seeds the target's database at `factor` (1 = full size; 0.01 for a quick check), then the run's own fixtures; `same`: fingerprinted, to compare. */
export async function seedAtScale(target: Target, factor: number, load: { users: number; products: number }, same?: { seedStart?: number }) {
  const t0 = performance.now();
  const seed = await seedHistory(target.databaseUrl, factor, (line) => process.stderr.write(`${line}\n`), { ...same, fingerprint: !!same });
  const seedingSeconds = Math.round((performance.now() - t0) / 10) / 100;
  const { users: U, products: P } = seed.seeded;
  const initialStock = new Map(Array.from({ length: P }, (_, i) => [i + 1, seed.initialStock] as [number, number]));
  const userIds = await drawIds(target.pool, 'users', load.users, 11);
  const productIds = (await drawIds(target.pool, 'products', load.products, 12)).sort((a, b) => a - b);
  const couponHolders = Math.max(1, Math.floor(userIds.length / 50));
  const seeded = await seedFixture(target.pool, { users: 0, products: 0, couponHolders }, initialStock, { userIds, productIds });
  const middle = [productIds[Math.floor(productIds.length / 3)]!, productIds[Math.floor((2 * productIds.length) / 3)]!, productIds.at(-1)!];
  // Under load the service writes orders in groups: 32 orders at once, each of one random product.
  const [buyers, rand] = [userIds.slice(1, 33), seededRandom(5)];
  const group = Array.from({ length: 32 }, (_, i) => ({ userId: buyers[i % buyers.length]!, productId: 1 + Math.floor(rand() * P) }));
  const plans = await orderPathPlans(target.databaseUrl, userIds[0]!, middle, group);
  const seqScansOf = (orderPath: boolean) => plans.filter((p) => p.orderPath === orderPath).flatMap((p) => p.seqScans.map((t) => `${t} (${p.what})`));
  const { initialStock: _, ...seeding } = seed;
  // Exact row counts and sizes (the run's fixtures included); every Seq Scan on a big table, `table (statement)`, in the order path's plans and
  // in the background jobs' (relay, rollup).
  const scale = { factor, ...seeding, ...(await historyTableSizes(target.pool)), seedingSeconds, plans, seqScansOnBigTables: seqScansOf(true),
    seqScansOffOrderPath: seqScansOf(false), load: { users: userIds.length, products: productIds.length, couponHolders } };
  return { ...seeded, scale };
}

/** --unpartitioned-reference: apps/api on the reference (a database beside the target's migrated to 0013 only), the same rows seeded, metered alike. */
export async function startReference(target: Target, o: { poolSize: number; orderWrites: number; statements: number }, main: ScaleInfo, load: Parameters<typeof seedAtScale>[2]) {
  const ref = await startTarget({ ...o, cpuProfileDir: null, beside: target.adminUrl }); // with --url: on an embedded PostgreSQL
  const { scale, fixture, initialStock } = await seedAtScale(ref, main.factor, load, { seedStart: Date.parse(main.seededBefore) });
  return { target: ref, fixture, meter: await createMeter(ref.pool, () => ref.servicePid, ref.statements, o.statements), runner: 'unpartitioned' as const, scale,
    label: 'service (HTTP), unpartitioned reference', check: () => referenceViolations(ref.pool, initialStock, main, scale) };
}

/** The scale section of bench.md. */
export function scaleMarkdown(s: ScaleInfo): string {
  const [n, h, seqScans] = [(x: number) => x.toLocaleString('en-US'), s.history, (p: OrderPathPlan) => p.seqScans.join(', ')];
  const mib = (b: number) => `${n(Math.round(b / 2 ** 20))} MiB`;
  return `${[
    '',
    ...section(
      `Data at scale (--scale, factor ${s.factor})`,
      `Seeded straight into the database in **${n(s.seedingSeconds)} s**: ${n(s.seeded.users)} users, ${n(s.seeded.products)} products, ` +
        `${n(s.seeded.orders)} orders between ${h.from.slice(0, 10)} and ${h.to.slice(0, 16)}Z, ${n(s.seeded.coupons)} coupon campaigns. ` +
        `Database size after seeding: **${mib(s.databaseBytes)}** (pg_database_size). Delivered events are kept for the orders since ` +
        `${h.eventsRetainedSince.slice(0, 16)}Z only (the relay's ${h.retentionDays}-day retention would have purged older ones); ` +
        'the audit requires exactly one event of every order placed since then, at most one of older ones. ' +
        `The load: ${n(s.load.users)} users drawn at random from all ${n(s.seeded.users)}, ${n(s.load.products)} products from all ` +
        `${n(s.seeded.products)} (as many as the default run's). Schema after seeding identical to the migrations': ${s.schemaUnchanged ? 'yes' : '**no**'}.`,
      table(Object.keys(s.rows), [['table', (t) => t], ['rows', (t) => s.rows[t]], ['size', (t) => mib(s.tableBytes[t]!)]]),
      table(s.steps, [['seeding step', (st) => st.step], ['s', (st) => st.seconds], ['rows', (st) => st.rows]]),
    ),
    '### Order path plans on the seeded tables (auto_explain, ANALYZE, BUFFERS)', '',
    s.seqScansOnBigTables.length === 0
      ? `Order path: no Seq Scan on ${BIG_TABLES.join(', ')} in any of its ${s.plans.filter((p) => p.orderPath).length} plans below.`
      : `**Order path, Seq Scan on a big table:** ${s.seqScansOnBigTables.join('; ')}.`, '',
    s.seqScansOffOrderPath.length === 0
      ? 'Background jobs beside it (relay, best-seller rollup): no Seq Scan on those tables either.'
      : `**Background jobs beside it, Seq Scan on a big table:** ${s.seqScansOffOrderPath.join('; ')}.`, '',
    ...s.plans.flatMap((p) => [`<details><summary>${p.what.replace(/</g, '&lt;')}${seqScans(p) && ` — **Seq Scan on ${seqScans(p)}**`}</summary>`,
      '', '```', p.plan, '```', '</details>', '']),
  ].join('\n')}\n`;
}
