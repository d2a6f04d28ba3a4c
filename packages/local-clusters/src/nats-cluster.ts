import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { eventually } from './eventually.ts';
import { freePort } from './ports.ts';
import { makeTempDir, removeTempDir } from './temp.ts';

/**
 * Local nats-server processes forming one JetStream cluster, for the tests and the benchmark that
 * kill a node. Each node has its own client, route and monitoring port and its own store
 * directory, kept across a SIGKILL and restart (a node comes back with what it had on disk, as a
 * crashed server would).
 */

/**
 * Where the nats-server binary is: NATS_SERVER_BIN, else the PATH, else /usr/sbin and
 * /usr/local/bin (Debian's package installs it in /usr/sbin, which a non-root PATH often lacks;
 * `.ci/run` starts the single test server from there too).
 */
export function findNatsServer(): string | null {
  const given = process.env.NATS_SERVER_BIN;
  const candidates = [
    ...(given ? [given] : []),
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'nats-server')),
    '/usr/sbin/nats-server',
    '/usr/local/bin/nats-server',
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  return null;
}

export interface NatsNode {
  /** Its server name, as stream info's cluster.leader and replicas name it. */
  readonly name: string;
  readonly url: string;
  readonly clientPort: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  readonly storeDir: string;
  /** The process's last output lines (its log), for diagnosing a failure. */
  readonly output: string[];
  readonly running: boolean;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Every node's client URL, in node order. */
  readonly urls: readonly string[];
  node(name: string): NatsNode;
  /** A node's monitoring endpoint (`/jsz`, `/varz`, ...), parsed. */
  monitor(name: string, endpoint: string): Promise<any>;
  /** Waits until every running node names the same JetStream meta leader; returns its name. */
  metaLeader(timeoutMs?: number): Promise<string>;
  /** SIGKILL: no shutdown, no goodbye to its peers; resolves once the process is gone. */
  kill(name: string): Promise<void>;
  /** Starts a killed node again with the same ports and store directory; resolves once it takes clients. */
  restart(name: string): Promise<void>;
  /** Stops every node and removes their store directories. */
  stop(): Promise<void>;
  /** The logs of every node, for a failure message. */
  logs(): string;
}

/** Nodes still running when their test file ends (a test that failed before stop()), or as the process exits. */
const live = new Set<ChildProcess>();
export function killLeftoverNatsNodes(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
process.once('exit', killLeftoverNatsNodes);

const OUTPUT_LINES = 200;

interface NodeState {
  name: string;
  url: string;
  clientPort: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  output: string[];
  child: ChildProcess | null;
  exited: Promise<void> | null;
  readonly running: boolean;
}

/**
 * Starts `size` nodes forming a cluster (every node lists every node's route; `--cluster_name`,
 * `--server_name`, `-js`, `-sd` of its own) and waits until they have a JetStream meta leader.
 */
export async function startNatsCluster(bin: string, size = 3, clusterName = 'test-cluster'): Promise<NatsCluster> {
  // A port found free can still be taken before the node listens on it (another test's server):
  // then the whole cluster starts again on new ports, since every node lists every route.
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartCluster(bin, size, clusterName);
    } catch (err) {
      if (attempt === 3 || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function tryStartCluster(bin: string, size: number, clusterName: string): Promise<NatsCluster> {
  const nodes: NodeState[] = [];
  for (let i = 1; i <= size; i++) {
    const [clientPort, clusterPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
    nodes.push({
      name: `n${i}`,
      url: `nats://127.0.0.1:${clientPort}`,
      clientPort,
      clusterPort,
      monitorPort,
      storeDir: makeTempDir(`nats-n${i}-`),
      output: [],
      child: null,
      exited: null,
      get running() {
        return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
      },
    });
  }
  const routes = nodes.map((n) => `nats://127.0.0.1:${n.clusterPort}`).join(',');

  const byName = (name: string) => {
    const node = nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node named ${name} (have ${nodes.map((n) => n.name).join(', ')})`);
    return node;
  };

  const monitor = async (name: string, endpoint: string): Promise<any> => {
    const response = await fetch(`http://127.0.0.1:${byName(name).monitorPort}/${endpoint.replace(/^\//, '')}`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) throw new Error(`${name} /${endpoint}: HTTP ${response.status}`);
    return response.json();
  };

  const launch = async (node: NodeState) => {
    const child = spawn(
      bin,
      [
        '-a', '127.0.0.1',
        '-p', String(node.clientPort),
        '-m', String(node.monitorPort),
        '--server_name', node.name,
        '--cluster_name', clusterName,
        '--cluster', `nats://127.0.0.1:${node.clusterPort}`,
        '--routes', routes,
        '-js',
        '-sd', node.storeDir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    live.add(child);
    node.child = child;
    const keep = (chunk: Buffer) => {
      node.output.push(...chunk.toString().split('\n').filter(Boolean));
      if (node.output.length > OUTPUT_LINES) node.output.splice(0, node.output.length - OUTPUT_LINES);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    node.exited = new Promise((resolve) =>
      child.once('exit', () => {
        live.delete(child);
        resolve();
      }),
    );
    // Takes clients once its monitoring port answers /healthz (JetStream too, from 2.9 on).
    await eventually(
      async () => {
        if (!node.running) throw new Error(`nats-server ${node.name} exited:\n${node.output.join('\n')}`);
        return monitor(node.name, 'varz').then(
          () => true,
          () => false,
        );
      },
      `nats-server ${node.name} to listen`,
      15_000,
      100,
    );
  };

  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    node: byName,
    monitor,
    async metaLeader(timeoutMs = 30_000) {
      let leader = '';
      await eventually(
        async () => {
          const running = nodes.filter((n) => n.running);
          const views = await Promise.all(running.map((n) => monitor(n.name, 'jsz').then((j) => j.meta_cluster?.leader ?? '', () => '')));
          leader = views[0] ?? '';
          return leader !== '' && views.every((v) => v === leader);
        },
        `a JetStream meta leader every running node agrees on\n${cluster.logs()}`,
        timeoutMs,
        100,
      );
      return leader;
    },
    async kill(name) {
      const node = byName(name);
      if (!node.running) throw new Error(`${name} is not running`);
      node.child!.kill('SIGKILL');
      await node.exited;
      node.output.push('--- SIGKILL ---');
    },
    async restart(name) {
      const node = byName(name);
      if (node.running) throw new Error(`${name} is still running`);
      await launch(node);
    },
    async stop() {
      for (const node of nodes) if (node.running) node.child!.kill('SIGKILL');
      await Promise.all(nodes.map((n) => n.exited));
      await Promise.all(nodes.map((n) => removeTempDir(n.storeDir)));
    },
    logs() {
      return nodes.map((n) => `--- ${n.name} (${n.url}) ---\n${n.output.slice(-40).join('\n')}`).join('\n');
    },
  };

  try {
    for (const node of nodes) await launch(node);
    await cluster.metaLeader();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
