/**
 * The benchmark's SQL (apps/bench): everything it writes or reads beside the service's own
 * statements, kept here with the schema it depends on. Not used by the service.
 */
export { HISTORY_TABLES, historyTableSizes, seedHistory, type HistoryStep, type SeededHistory } from './history-seed.ts';
export { BIG_TABLES, orderPathPlans, type OrderPathPlan } from './order-path-plans.ts';
export { paidEventSql } from './paid-event-sql.ts';
export * from './probes.ts';
export { scratchDatabase } from './scratch-database.ts';
