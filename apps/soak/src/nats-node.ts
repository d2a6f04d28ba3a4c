import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { eventually, freePort } from '@shop/local-clusters';

/**
 * One nats-server with JetStream, on ports of its own and a store directory kept across its
 * restarts (a stopped server comes back with its stream). Not the one on 4222: that serves others.
 */
export interface NatsNode {
  readonly url: string;
  readonly version: string;
  readonly running: boolean;
  readonly output: string[];
  /** SIGTERM: nats-server shuts down cleanly. Resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports and store; resolves once it answers /healthz. */
  start(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startNatsNode(bin: string, storeDir: string): Promise<NatsNode> {
  const [port, monitorPort] = [await freePort(), await freePort()];
  const output: string[] = [];
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const running = () => child !== null && child.exitCode === null && child.signalCode === null;
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^nats-server:\s*/, '');

  const start = async () => {
    if (running()) throw new Error('nats-server is already running');
    const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '--server_name', 'soak', '-js', '-sd', storeDir];
    const started = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    live.add(started);
    const keep = (chunk: Buffer) => {
      output.push(...chunk.toString().split('\n').filter(Boolean));
      if (output.length > 200) output.splice(0, output.length - 200);
    };
    started.stdout!.on('data', keep);
    started.stderr!.on('data', keep);
    exited = new Promise((resolve) => started.once('exit', () => (live.delete(started), resolve())));
    await eventually(
      async () => {
        if (!running()) throw new Error(`nats-server exited:\n${output.join('\n')}`);
        const health = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
        return health?.ok === true;
      },
      'nats-server to answer /healthz',
      30_000,
      100,
    );
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    version,
    output,
    get running() {
      return running();
    },
    async stop(signal = 'SIGTERM') {
      if (running()) child!.kill(signal);
      await exited;
    },
    start,
  };
}
