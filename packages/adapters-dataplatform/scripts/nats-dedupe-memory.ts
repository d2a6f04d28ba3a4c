import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { DUPLICATE_WINDOW_MS } from '../src/index.ts';
import { findNatsServer, freePort } from '../../../test/support/nats-cluster.ts';

/**
 * What one message id in JetStream's duplicate window costs a server, measured: N messages of
 * an event's size published to a stream with the service's window, once with a distinct
 * Nats-Msg-Id each and once with the same bytes under another header name (no id kept). The
 * difference in the Go heap left live after the runtime's forced GC (GODEBUG=gctrace=1), over N,
 * is the cost of one id: the dedupe map entry, its slot in the expiry array, the entry itself and
 * the id string (server/stream.go: ddmap, ddarr, ddentry). Every replica of a stream keeps its own.
 *
 * Usage: pnpm --filter @shop/adapters-dataplatform nats-dedupe [messages=500000]
 */
const MESSAGES = Number(process.argv[2] ?? 500_000);
const IN_FLIGHT = 512;
/** The Go runtime forces a GC when none ran for two minutes; wait past it, publishing stopped. */
const SETTLE_MS = 130_000;

const bin = findNatsServer();
if (!bin) throw new Error('nats-server not found (NATS_SERVER_BIN, PATH, /usr/sbin, /usr/local/bin)');

// An order.paid body of typical size (about 330 bytes), its eventId replaced per message.
const body = (eventId: string) =>
  JSON.stringify({
    eventId,
    type: 'order.paid',
    occurredAt: new Date().toISOString(),
    data: {
      orderId: randomUUID(),
      userId: 12345,
      items: [{ productId: 10, quantity: 2, unitPrice: 1500 }],
      totalAmount: 3000,
      discountAmount: 300,
      paidAmount: 2700,
      couponId: 5,
      createdAt: new Date().toISOString(),
    },
  });

async function run(withIds: boolean): Promise<{ liveHeapMB: number; rssMB: number; seconds: number; lastGc: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nats-dedupe-'));
  const [port, monitorPort] = [await freePort(), await freePort()];
  const gc: string[] = [];
  const server = spawn(bin!, ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-js', '-sd', dir], {
    env: { ...process.env, GODEBUG: 'gctrace=1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server.stderr!.on('data', (chunk: Buffer) => gc.push(...chunk.toString().split('\n').filter((l) => l.startsWith('gc '))));
  try {
    let nc;
    for (let i = 0; ; i++) {
      try {
        nc = await connect({ servers: `nats://127.0.0.1:${port}` });
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'DEDUPE', subjects: ['dedupe.>'], duplicate_window: DUPLICATE_WINDOW_MS * 1e6 });
    const js = jetstream(nc);
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < MESSAGES) {
          next++;
          const id = randomUUID();
          if (withIds) {
            await js.publish('dedupe.paid', body(id), { msgID: id });
          } else {
            // The same header bytes under a name JetStream does not read: "Nats-Msg-Id" is 11 characters, so is this.
            const h = headers();
            h.set('X-Event-Idx', id);
            await js.publish('dedupe.paid', body(id), { headers: h });
          }
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const info = await jsm.streams.info('DEDUPE');
    if (info.state.messages !== MESSAGES) throw new Error(`stream holds ${info.state.messages} messages, expected ${MESSAGES}`);
    await nc.close();
    const before = gc.length;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    if (gc.length === before) throw new Error('no GC ran while settling; cannot read the live heap');
    // "gc N @t s p%: ... a->b->c MB, g MB goal ...": c is the heap marked live by that cycle.
    const live = /->(\d+)->(\d+) MB/.exec(gc[gc.length - 1]!);
    const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as { mem: number };
    return { liveHeapMB: Number(live![2]), rssMB: Math.round(varz.mem / 2 ** 20), seconds, lastGc: gc[gc.length - 1]! };
  } finally {
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const version = await new Promise<string>((resolve) => {
  const p = spawn(bin, ['--version']);
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d));
  p.on('exit', () => resolve(out.trim()));
});
const without = await run(false);
const withIds = await run(true);
const perIdBytes = ((withIds.liveHeapMB - without.liveHeapMB) * 2 ** 20) / MESSAGES;
console.log(
  JSON.stringify(
    {
      server: version,
      messages: MESSAGES,
      duplicateWindowMs: DUPLICATE_WINDOW_MS,
      withoutIds: without,
      withIds,
      perIdBytes: Math.round(perIdBytes),
      at1000PerSecondFor24h: `${((86_400_000 * perIdBytes) / 2 ** 30).toFixed(1)} GiB per replica`,
    },
    null,
    2,
  ),
);
