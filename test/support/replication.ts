// Moved to packages/local-clusters, which the benchmark shares.
export { startReplicatedCluster, type ReplicatedCluster, type ReplicationOptions } from '@shop/local-clusters';
