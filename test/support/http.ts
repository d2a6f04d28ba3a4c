import pino from 'pino';
import { signToken } from '@shop/adapters-http';
import { loadConfig } from '../../apps/api/src/config.ts';
import { startService, type Service } from '../../apps/api/src/service.ts';
import { makeTempDir, removeTempDir } from './temp.ts';

export const TEST_AUTH_SECRET = 'test-secret-that-is-at-least-32-bytes-long!';
export const secretBytes = new TextEncoder().encode(TEST_AUTH_SECRET);

export interface Reply<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
  /** The body as it came, for byte comparisons. */
  readonly text: string;
}

export interface RequestOptions {
  readonly token?: string | null;
  readonly headers?: Record<string, string>;
  /** Sent as is, for malformed bodies. */
  readonly rawBody?: string;
}

/** A thin HTTP client over real sockets: the tests see exactly what a client would. */
export class Client {
  readonly baseUrl: string;
  readonly adminToken: string;

  constructor(baseUrl: string, adminToken: string) {
    this.baseUrl = baseUrl;
    this.adminToken = adminToken;
  }

  async request<T = any>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? this.adminToken : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined = options.rawBody;
    if (payload === undefined && body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(this.baseUrl + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep the text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers, text };
  }

  get = <T = any>(path: string, options?: RequestOptions) => this.request<T>('GET', path, undefined, options);
  post = <T = any>(path: string, body: unknown, options?: RequestOptions) => this.request<T>('POST', path, body, options);
  patch = <T = any>(path: string, body: unknown, options?: RequestOptions) => this.request<T>('PATCH', path, body, options);

  userToken(userId: number): Promise<string> {
    return signToken(secretBytes, { userId });
  }

  // Arrangement through the admin API, as an operator would do it.

  async createUser(balance = 0, name = 'test user'): Promise<{ userId: number; token: string }> {
    const res = await this.post('/admin/users', { name });
    if (res.status !== 201) throw new Error(`create user: ${res.status} ${JSON.stringify(res.body)}`);
    const userId = res.body.userId as number;
    let left = balance;
    while (left > 0) {
      const amount = Math.min(left, 10_000_000);
      const charged = await this.post(`/users/${userId}/balance/charge`, { amount });
      if (charged.status !== 200) throw new Error(`charge: ${charged.status} ${JSON.stringify(charged.body)}`);
      left -= amount;
    }
    return { userId, token: await this.userToken(userId) };
  }

  async createProduct(price: number, stock: number, name = 'test product'): Promise<number> {
    const res = await this.post('/admin/products', { name, price, stock });
    if (res.status !== 201) throw new Error(`create product: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.productId as number;
  }

  async createCoupon(fields: Record<string, unknown>): Promise<number> {
    const res = await this.post('/admin/coupons', { name: 'test coupon', totalQuantity: 1000, ...fields });
    if (res.status !== 201) throw new Error(`create coupon: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.couponId as number;
  }

  async grant(couponId: number, userId: number): Promise<void> {
    const res = await this.post(`/admin/coupons/${couponId}/grant`, { userId });
    if (res.status !== 201) throw new Error(`grant: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

export interface TestApp {
  readonly service: Service;
  readonly client: Client;
  close(): Promise<void>;
}

/** The real composition root (apps/api) on a loopback port, against the given database. */
export async function startTestApp(databaseUrl: string, env: Record<string, string> = {}): Promise<TestApp> {
  // Removed on close, unless the caller brought its own DATA_DIR.
  const dataDir = env.DATA_DIR === undefined ? makeTempDir('order-service-app-') : null;
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    AUTH_SECRET: TEST_AUTH_SECRET,
    LOG_LEVEL: 'silent',
    DATABASE_POOL_SIZE: '20',
    ...(dataDir ? { DATA_DIR: dataDir } : {}),
    // The tests are one client hammering on purpose (2,000 connections at once from 127.0.0.1 in
    // the coupon bursts); rate limits and the connection limit have their own tests.
    RATE_LIMIT_USER_PER_SEC: '0',
    RATE_LIMIT_IP_PER_SEC: '0',
    MAX_CONNECTIONS_PER_ADDRESS: '0',
    ...env,
  });
  const removeDataDir = async () => {
    if (dataDir) await removeTempDir(dataDir);
  };
  let service: Service;
  try {
    service = await startService(config, pino({ level: config.logLevel }));
  } catch (err) {
    await removeDataDir();
    throw err;
  }
  try {
    // It listens before the database answers; the tests want it answering.
    await service.ready;
  } catch (err) {
    await service.close();
    await removeDataDir();
    throw err;
  }
  const client = new Client(service.url, await signToken(secretBytes, { admin: true }));
  return {
    service,
    client,
    async close() {
      await service.close();
      await removeDataDir();
    },
  };
}
