import { signToken } from '@shop/adapters-http';
import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { startService, type Service } from './service.ts';

async function printDemo(service: Service, secret: Uint8Array): Promise<void> {
  const admin = await signToken(secret, { admin: true });
  const userId = service.seeded?.userIds[0] ?? 1;
  const user = await signToken(secret, { userId });
  const productId = service.seeded?.productIds[0] ?? 1;
  const couponId = service.seeded?.couponId ?? 1;
  const u = service.url;
  process.stdout.write(`
Order service listening on ${u}  (API docs: ${u}/docs)
${service.localEventsFile ? `order.paid events (no DATA_PLATFORM_URL set): ${service.localEventsFile}\n` : ''}
Demo tokens (valid 30 days, signed with the secret kept in DATA_DIR):
  export ADMIN_TOKEN=${admin}
  export USER_TOKEN=${user}     # user ${userId}

Try:
  curl ${u}/products
  curl -H "Authorization: Bearer $USER_TOKEN" ${u}/users/${userId}/balance
  curl -X POST ${u}/orders -H "Authorization: Bearer $USER_TOKEN" -H 'Content-Type: application/json' \\
       -d '{"userId":${userId},"items":[{"productId":${productId},"quantity":1}],"couponId":${couponId}}'

`);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const service = await startService(config, log);
  // Listening already; the database may not answer yet (then /health/ready is 503 until it does).
  log.info({ url: service.url }, 'listening');

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    service.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    await service.ready;
  } catch (err) {
    if (closing) return; // closed before the database answered
    closing = true;
    log.fatal({ err }, 'failed to start');
    await service.close();
    process.exit(1);
  }
  if (service.secretGenerated && service.authSecret) await printDemo(service, service.authSecret);
  log.info({ url: service.url }, 'ready');
}

main().catch((err) => {
  process.stderr.write(`failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
