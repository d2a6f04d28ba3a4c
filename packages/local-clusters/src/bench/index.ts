/**
 * The benchmark's workloads across servers (apps/bench): mixed with its catalog on a streaming
 * replica, and delivery to a JetStream cluster losing a node; and the "each received once" check
 * of delivered events that the benchmark's own audit shares.
 */
export { clusterDeliveryWorkload, killLeaderAndRestart, streamConsumer, streamLeader, type ClusterDelivery } from './cluster-delivery.ts';
export { receivedOnce } from './deliveries.ts';
export { mixedUncachedWorkload, replicaReadsWorkload, type ReplicaReads } from './replica-reads.ts';
export { startBenchReplication, type RunLike, type ScalingTarget } from './target.ts';
