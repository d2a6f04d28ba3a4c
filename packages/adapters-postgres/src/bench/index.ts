/**
 * The benchmark's SQL (apps/bench): everything it writes or reads beside the service's own
 * statements, kept here with the schema it depends on, and what makes and watches a streaming
 * replica (the benchmark's and the tests', packages/local-clusters). Not used by the service.
 */
export { addFreshOrders, loadSalesMonth, plainTopSellers } from './best-seller-history.ts';
export { addCoupon, addProducts, addUsers, grantCoupon, issuedQuantity } from './fixture-rows.ts';
export {
  fingerprintDifferences, HISTORY_TABLES, historyFingerprint, historyTableSizes, seedHistory, type HistoryFingerprint, type HistoryStep,
  type SeededHistory,
} from './history-seed.ts';
export { BIG_TABLES, orderPathPlans, type OrderPathPlan } from './order-path-plans.ts';
export { paidEventSql } from './paid-event-sql.ts';
export { addPendingEvents, leasePendingEvents } from './pending-events.ts';
export { pgbenchEnv, pgbenchScript, pgbenchVars, type PgbenchWorkload } from './pgbench-scripts.ts';
export * from './probes.ts';
export { baseBackup, currentWalLsn, queryServer, replayedPast, setReplayPaused } from './replication.ts';
export { holdProductRow, lockFirstIssue, plainRowLockOrder, type PlainOrderOutcome } from './reference-transactions.ts';
export { HISTORY_AGGREGATE_PREFIX, removeRetainedHistory, retainedDays, seedRetainedHistory, type RetainedDay, type SeededDay } from './retained-history.ts';
export { scratchDatabase } from './scratch-database.ts';
export { migrateUnpartitioned, partitionedTables, REFERENCE_MARKER, referenceViolations } from './unpartitioned-reference.ts';
