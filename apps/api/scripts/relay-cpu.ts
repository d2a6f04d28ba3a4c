// The relay's own CPU per event in one process: N order.paid events recorded in a new database on
// the admin URL's server, then the relay (claims, deliveries, delivered marks, as the service wires it
// but with no metrics) drains them to a receiver in another process, which answers 204 at once.
// What the service's CPU per order carries for delivery, apart from the orders; run it alternately
// in worktrees of two commits to compare them. With --handed the events are leased at insert and
// handed to the relay in memory, as a new order's are from its commit (ADR 0003, decision 6), not claimed:
//   node apps/api/scripts/relay-cpu.ts [events, default 30000] [admin URL, default postgres://postgres@127.0.0.1:5432/test] [--handed]
import { spawn } from 'node:child_process';
import { pgOutboxStore } from '@shop/adapters-postgres';
import { addPendingEvents, leasePendingEvents, scratchDatabase } from '@shop/adapters-postgres/bench';
import { OutboxRelay, systemClock } from '@shop/application';
import { HttpEventPublisher } from '@shop/adapters-dataplatform';

const handed = process.argv.includes('--handed');
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const n = Number(args[0] ?? 30_000);
const scratch = await scratchDatabase(args[1] ?? 'postgres://postgres@127.0.0.1:5432/test');
const receiver = spawn(
  process.execPath,
  ['--input-type=module', '-e', `
    import http from 'node:http';
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(204).end()); });
    server.listen(0, '127.0.0.1', () => process.send(server.address().port));`],
  { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
);
try {
  await addPendingEvents(scratch.db.pool, n);
  const records = handed ? await leasePendingEvents(scratch.db.pool, 60_000) : [];
  const port = await new Promise<number>((resolve) => receiver.once('message', (m) => resolve(m as number)));
  const publisher = new HttpEventPublisher(`http://127.0.0.1:${port}/events`, { timeoutMs: 5_000, connections: 16 });
  let delivered = 0;
  const relay = new OutboxRelay({ store: pgOutboxStore(scratch.db.kysely), publisher, clock: systemClock, observer: { delivered: () => void delivered++ } });
  const before = process.cpuUsage();
  const started = performance.now();
  relay.start();
  // Handed over as commits would: each when the relay has a slot for it.
  for (const record of records) {
    let slot = relay.reserve();
    while (!slot) (await new Promise((resolve) => setTimeout(resolve, 1)), (slot = relay.reserve()));
    slot.deliver(record);
  }
  while (delivered < n) await new Promise((resolve) => setTimeout(resolve, 50));
  const used = process.cpuUsage(before);
  const ms = performance.now() - started;
  await relay.stop();
  await publisher.close();
  process.stdout.write(
    `relay${handed ? ', handed over' : ''}: ${n} events, ${((used.user + used.system) / n).toFixed(1)} µs of CPU per event (${(used.system / n).toFixed(1)} in the kernel), ` +
      `${Math.round((n / ms) * 1000)} events/s\n`,
  );
} finally {
  receiver.kill();
  await scratch.close();
}
