/**
 * Real servers started as local processes, for the tests and the benchmark: a PostgreSQL primary
 * with streaming replicas, a NATS JetStream cluster whose nodes can be killed and restarted, and
 * the ports, temporary directories, waits and CPU readings they need. Not used by the service.
 */
export { eventually } from './eventually.ts';
export { findNatsServer, killLeftoverNatsNodes, startNatsCluster, type NatsCluster, type NatsNode } from './nats-cluster.ts';
export { freePort } from './ports.ts';
export { MS_PER_TICK, postmasterOf, processSysTicks, processTicks, treeTicks } from './process-cpu.ts';
export { postgresVersion, startReplicatedCluster, type ReplicatedCluster, type ReplicationOptions } from './postgres-replicas.ts';
export { makeTempDir, removeTempDir, removeTempDirSync, tempParent, TEST_TMPDIR_ENV } from './temp.ts';
