/**
 * The benchmark's workloads across servers (apps/bench): mixed with its catalog on a streaming
 * replica; and the "each received once" check of delivered events that its own audit shares.
 */
export { receivedOnce } from './deliveries.ts';
export { replicaReadsWorkload, type ReplicaReads } from './replica-reads.ts';
export { startBenchReplication, type RunLike, type ScalingTarget } from './target.ts';
