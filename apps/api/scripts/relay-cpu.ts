// The relay's own CPU per event in one process: N order.paid events recorded in a new database on
// ADMIN_URL's server, then the relay (claims, deliveries, delivered marks, as the service wires it
// but with no metrics) drains them to a receiver in another process, which answers 204 at once.
// What the service's CPU per order carries for delivery, apart from the orders; run it alternately
// in worktrees of two commits to compare them:
//   node apps/api/scripts/relay-cpu.ts [events, default 30000] [admin URL, default postgres://postgres@127.0.0.1:5432/test]
import { spawn } from 'node:child_process';
import pg from 'pg';
import { migrate, openDatabase, pgOutboxStore } from '@shop/adapters-postgres';
import { OutboxRelay, systemClock } from '@shop/application';
import { HttpEventPublisher } from '@shop/adapters-dataplatform';

const n = Number(process.argv[2] ?? 30_000);
const admin = process.argv[3] ?? 'postgres://postgres@127.0.0.1:5432/test';
const name = `relay_cpu_${Date.now()}`;
const sql = async (text: string) => {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(text).finally(() => c.end());
};
await sql(`CREATE DATABASE ${name}`);
const url = new URL(admin);
url.pathname = `/${name}`;
const db = openDatabase({ connectionString: url.toString(), max: 3 });
const receiver = spawn(
  process.execPath,
  ['--input-type=module', '-e', `
    import http from 'node:http';
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(204).end()); });
    server.listen(0, '127.0.0.1', () => process.send(server.address().port));`],
  { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
);
try {
  await migrate(db.pool);
  // The payload the domain records for a one-line order (the platform reads it, the relay does not).
  await db.pool.query(
    `INSERT INTO outbox_events (event_id, event_type, aggregate_id, occurred_at, payload)
     SELECT e.id, 'order.paid', 'o' || e.i, now(), jsonb_build_object('eventId', e.id, 'type', 'order.paid', 'occurredAt', now(),
       'data', jsonb_build_object('orderId', 'o' || e.i, 'userId', e.i % 10000, 'items', jsonb_build_array(jsonb_build_object(
         'productId', e.i % 1000, 'quantity', 1, 'unitPrice', 5000, 'lineAmount', 5000)),
         'totalAmount', 5000, 'discountAmount', 0, 'paidAmount', 5000, 'couponId', null))
       FROM (SELECT i, uuid_v7() AS id FROM generate_series(1, $1::int) i) e`,
    [n],
  );
  await db.pool.query('VACUUM ANALYZE outbox_events');
  const port = await new Promise<number>((resolve) => receiver.once('message', (m) => resolve(m as number)));
  const publisher = new HttpEventPublisher(`http://127.0.0.1:${port}/events`, { timeoutMs: 5_000, connections: 16 });
  let delivered = 0;
  const relay = new OutboxRelay({ store: pgOutboxStore(db.kysely), publisher, clock: systemClock, observer: { delivered: () => void delivered++ } });
  const before = process.cpuUsage();
  const started = performance.now();
  relay.start();
  while (delivered < n) await new Promise((resolve) => setTimeout(resolve, 50));
  const used = process.cpuUsage(before);
  const ms = performance.now() - started;
  await relay.stop();
  await publisher.close();
  process.stdout.write(
    `relay: ${n} events, ${((used.user + used.system) / n).toFixed(1)} µs of CPU per event (${(used.system / n).toFixed(1)} in the kernel), ` +
      `${Math.round((n / ms) * 1000)} events/s\n`,
  );
} finally {
  receiver.kill();
  await db.close();
  await sql(`DROP DATABASE ${name} WITH (FORCE)`);
}
