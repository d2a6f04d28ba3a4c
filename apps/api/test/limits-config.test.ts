import { expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';

const load = (env: Record<string, string>) => loadConfig({ AUTH_SECRET: 'x'.repeat(32), ...env });

test('TRUST_PROXY: off by default, a hop count, or the proxies addresses; never true', () => {
  expect(load({}).trustProxy).toBe(false);
  expect(load({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
  expect(load({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
  expect(load({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,loopback' }).trustProxy).toEqual(['10.0.0.5', '10.1.0.0/16', 'loopback']);
  expect(load({ TRUST_PROXY: 'fd00::/8' }).trustProxy).toEqual(['fd00::/8']);
  expect(() => load({ TRUST_PROXY: 'true' })).toThrow(/X-Forwarded-For a client writes/);
  expect(() => load({ TRUST_PROXY: 'nginx' })).toThrow(/TRUST_PROXY/);
});

test('REDIS_URL and METRICS_PORT: unset means limits per process and no metrics listener', () => {
  const plain = load({});
  expect(plain.redisUrl).toBeNull();
  expect(plain.metricsPort).toBeNull();
  const set = load({ REDIS_URL: 'redis://redis:6379/0', METRICS_PORT: '9100' });
  expect(set.redisUrl).toBe('redis://redis:6379/0');
  expect(set.metricsPort).toBe(9100);
  // Loopback by default, even where the API listens on every interface (contract v1.2).
  expect(load({ METRICS_PORT: '9100', HOST: '0.0.0.0' }).metricsHost).toBe('127.0.0.1');
  expect(load({ METRICS_PORT: '9100', METRICS_HOST: '10.0.0.5' }).metricsHost).toBe('10.0.0.5');
  expect(() => load({ REDIS_URL: 'http://redis' })).toThrow(/REDIS_URL/);
  expect(() => load({ METRICS_PORT: 'x' })).toThrow(/METRICS_PORT/);
  // One replica on one NATS server; 3 in a cluster (contract v1.2).
  expect(load({}).natsStreamReplicas).toBe(1);
  expect(load({ NATS_STREAM_REPLICAS: '3' }).natsStreamReplicas).toBe(3);
  expect(() => load({ NATS_STREAM_REPLICAS: '0' })).toThrow(/NATS_STREAM_REPLICAS/);
});

test('DATABASE_READ_URL: none by default; one or a comma list of postgres:// replicas; DATABASE_READ_MAX_LAG_MS 1000 by default', () => {
  expect(load({}).readReplicas).toEqual({ urls: [], maxLagMs: 1_000 });
  expect(load({ DATABASE_READ_URL: 'postgres://r1/shop, postgresql://r2/shop', DATABASE_READ_MAX_LAG_MS: '250' }).readReplicas).toEqual({
    urls: ['postgres://r1/shop', 'postgresql://r2/shop'],
    maxLagMs: 250,
  });
  expect(() => load({ DATABASE_READ_URL: 'mysql://r1/shop' })).toThrow(/DATABASE_READ_URL/);
  expect(() => load({ DATABASE_READ_MAX_LAG_MS: '-1' })).toThrow(/DATABASE_READ_MAX_LAG_MS/);
});

test('HTTP timeouts: head 10 s, whole request 15 s, idle connection 72 s by default; the head never longer than the request', () => {
  expect(load({}).http).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, keepAliveTimeoutMs: 72_000 });
  expect(load({ HTTP_HEADERS_TIMEOUT_MS: '2000', HTTP_REQUEST_TIMEOUT_MS: '3000', HTTP_KEEP_ALIVE_TIMEOUT_MS: '5000' }).http).toEqual({
    headersTimeoutMs: 2_000,
    requestTimeoutMs: 3_000,
    keepAliveTimeoutMs: 5_000,
  });
  // A shorter request timeout shortens the head's default with it.
  expect(load({ HTTP_REQUEST_TIMEOUT_MS: '4000' }).http.headersTimeoutMs).toBe(4_000);
  expect(() => load({ HTTP_HEADERS_TIMEOUT_MS: '20000' })).toThrow(/HTTP_HEADERS_TIMEOUT_MS \(20000\) must not be longer than HTTP_REQUEST_TIMEOUT_MS \(15000\)/);
  // Off is not offered: without them a trickling client holds its connection for ever.
  expect(() => load({ HTTP_REQUEST_TIMEOUT_MS: '0' })).toThrow(/HTTP_REQUEST_TIMEOUT_MS/);
  expect(() => load({ HTTP_KEEP_ALIVE_TIMEOUT_MS: 'x' })).toThrow(/HTTP_KEEP_ALIVE_TIMEOUT_MS/);
});

test('MAX_CONNECTIONS_PER_ADDRESS: 256 by default, 0 = no limit', () => {
  expect(load({}).maxConnectionsPerAddress).toBe(256);
  expect(load({ MAX_CONNECTIONS_PER_ADDRESS: '0' }).maxConnectionsPerAddress).toBe(0);
  expect(load({ MAX_CONNECTIONS_PER_ADDRESS: '4096' }).maxConnectionsPerAddress).toBe(4_096);
  expect(() => load({ MAX_CONNECTIONS_PER_ADDRESS: '-1' })).toThrow(/MAX_CONNECTIONS_PER_ADDRESS/);
});
