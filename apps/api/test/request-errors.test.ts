import { once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type HttpDeps } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Client, type Reply, type TestApp } from '../../../test/support/http.ts';

/**
 * Every error a client can receive is application/problem+json with a contract code, those raised
 * before a route runs included (contract, "Request-level errors"). One case per Fastify error
 * (FST_ERR_*, node_modules/fastify/lib/errors.js) that a request can provoke, each provoked over a
 * real socket; then what Node's HTTP parser refuses before Fastify sees a request, a server
 * closing, and a request not received in time. The FST_ERR_* that cannot reach a client are
 * listed in UNREACHABLE with the reason; a Fastify upgrade that adds one fails the last test until
 * it is sorted into one list or the other.
 */

let tdb: TestDatabase;
let app: TestApp;
let client: Client;
let port: number;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
  client = app.client;
  port = Number(new URL(client.baseUrl).port);
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

/** Limits of app.ts and Node: the URL limit (errors.ts MAX_URL_LENGTH), Node's 16 KiB request head, the 64 KiB body. */
const MAX_URL = 8 * 1024;
const NODE_HEAD_LIMIT = 16 * 1024;
const BODY_LIMIT = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for what fetch will not send (control characters, a half-sent request).

function parseRaw(text: string): Reply {
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = (split === -1 ? text : text.slice(0, split)).split('\r\n');
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const raw = split === -1 ? '' : text.slice(split + 4);
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    /* keep the text */
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body, text: raw };
}

/** Everything the server sends on `socket` until it closes the connection. */
async function readUntilClosed(socket: net.Socket): Promise<Reply> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  // The server may reset the connection right after its answer; the answer is what counts.
  socket.on('error', () => undefined);
  await once(socket, 'close');
  return parseRaw(Buffer.concat(chunks).toString('utf8'));
}

async function connect(to: number): Promise<net.Socket> {
  const socket = net.connect(to, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

/** Sends `bytes` as they are and reads the answer until the server closes the connection. */
async function raw(bytes: string, to = port): Promise<Reply> {
  const socket = await connect(to);
  const reply = readUntilClosed(socket);
  socket.write(bytes);
  return reply;
}

async function fetchReply(path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(client.baseUrl + path, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, headers: res.headers, body, text };
}

const get = (path: string) => fetchReply(path);
const post = (path: string, body: string, contentType: string | null, token: string | null = client.adminToken) =>
  fetchReply(path, {
    method: 'POST',
    body,
    headers: { ...(contentType === null ? {} : { 'content-type': contentType }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });

function expectProblem(res: Reply, status: number, code: string) {
  const summary = `${res.status} ${res.headers.get('content-type')} ${JSON.stringify(res.body)}`.slice(0, 400);
  expect([res.status, (res.body as { code?: string })?.code], summary).toEqual([status, code]);
  expect(res.headers.get('content-type') ?? '', summary).toMatch(/^application\/problem\+json/);
  expect(res.body, summary).toEqual({
    type: `/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: expect.stringMatching(/\S/),
    status,
    detail: expect.stringMatching(/\S/),
    code,
  });
  expect((res.body as { detail: string }).detail, summary).not.toMatch(/\bat .+:\d+:\d+|\.ts:\d+|FST_ERR/);
}

// ---------------------------------------------------------------------------------------------
// Fastify's errors that a request can provoke.

interface Case {
  readonly error: string;
  readonly how: string;
  readonly status: number;
  readonly code: string;
  readonly send: () => Promise<Reply>;
}

const PROVOKED: readonly Case[] = [
  { error: 'FST_ERR_BAD_URL', how: 'a malformed percent-encoding in a route path', status: 400, code: 'VALIDATION_ERROR', send: () => get('/orders/%zz') },
  { error: 'FST_ERR_BAD_URL', how: 'a malformed percent-encoding in an unknown path', status: 400, code: 'VALIDATION_ERROR', send: () => get('/%E0%A4%A') },
  {
    error: 'FST_ERR_MAX_PARAM_LENGTH',
    how: 'a path value longer than the URL limit',
    status: 414,
    code: 'URI_TOO_LONG',
    send: () => get(`/orders/${'a'.repeat(MAX_URL + 1)}`),
  },
  {
    error: 'FST_ERR_CTP_BODY_TOO_LARGE',
    how: 'a body over the limit',
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    send: () => post('/admin/users', `{"name":"${'x'.repeat(BODY_LIMIT)}"}`, 'application/json'),
  },
  {
    error: 'FST_ERR_CTP_BODY_TOO_LARGE',
    how: 'a body over the limit, of a type the service does not read',
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    send: () => post('/admin/users', 'x'.repeat(BODY_LIMIT + 1), 'application/json'),
  },
  { error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', how: 'a text/plain body', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', send: () => post('/admin/users', '{"name":"x"}', 'text/plain') },
  {
    error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    how: 'a form-urlencoded body',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    send: () => post('/admin/users', 'name=x', 'application/x-www-form-urlencoded'),
  },
  {
    error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    how: 'a JSON body without Content-Type',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    send: () => raw(`POST /admin/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${client.adminToken}\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{"name":"x"}`),
  },
  { error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', how: 'a Content-Type that is not a media type', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', send: () => post('/admin/users', '{"name":"x"}', 'json') },
  {
    error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    how: 'another +json type',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    send: () => post('/admin/users', '{"name":"x"}', 'application/merge-patch+json'),
  },
  { error: 'FST_ERR_CTP_EMPTY_JSON_BODY', how: 'an empty application/json body', status: 400, code: 'VALIDATION_ERROR', send: () => post('/admin/users', '', 'application/json') },
  { error: 'FST_ERR_CTP_INVALID_JSON_BODY', how: 'malformed JSON', status: 400, code: 'VALIDATION_ERROR', send: () => post('/admin/users', '{"name":', 'application/json') },
  {
    error: 'FST_ERR_CTP_INVALID_JSON_BODY',
    how: 'a __proto__ key',
    status: 400,
    code: 'VALIDATION_ERROR',
    send: () => post('/admin/users', '{"name":"x","__proto__":{"a":1}}', 'application/json'),
  },
  { error: 'FST_ERR_VALIDATION', how: 'a body against its schema', status: 400, code: 'VALIDATION_ERROR', send: () => post('/admin/users', '{"name":7}', 'application/json') },
  { error: 'FST_ERR_VALIDATION', how: 'a query string against its schema', status: 400, code: 'VALIDATION_ERROR', send: () => get('/products?limit=%zz') },
];

/**
 * FST_ERR_* that no request can provoke, and why. Most are raised while the app is built,
 * registered or started (a bad option, a duplicate route, a plugin's misuse), never while
 * answering a request; the reply's and the request's own are programming errors of a handler
 * (a bug: the error handler answers them 500 INTERNAL_ERROR, problem+json without internals);
 * the rest belong to features the service does not use.
 */
const AT_BUILD = 'raised while the app is built, registered or started: never during a request';
const HANDLER_BUG = 'misuse of the reply or request by a handler or hook: a bug, answered 500 INTERNAL_ERROR by the error handler';
const UNREACHABLE: Readonly<Record<string, string>> = {
  ...Object.fromEntries(
    [
      'FST_ERR_OPTIONS_NOT_OBJ', 'FST_ERR_QSP_NOT_FN', 'FST_ERR_SCHEMA_CONTROLLER_BUCKET_OPT_NOT_FN', 'FST_ERR_SCHEMA_ERROR_FORMATTER_NOT_FN',
      'FST_ERR_AJV_CUSTOM_OPTIONS_OPT_NOT_OBJ', 'FST_ERR_AJV_CUSTOM_OPTIONS_OPT_NOT_ARR', 'FST_ERR_LISTEN_OPTIONS_INVALID', 'FST_ERR_ERROR_HANDLER_NOT_FN',
      'FST_ERR_ERROR_HANDLER_ALREADY_SET', 'FST_ERR_CTP_ALREADY_PRESENT', 'FST_ERR_CTP_INVALID_TYPE', 'FST_ERR_CTP_EMPTY_TYPE', 'FST_ERR_CTP_INVALID_HANDLER',
      'FST_ERR_CTP_INVALID_PARSE_TYPE', 'FST_ERR_CTP_INSTANCE_ALREADY_STARTED', 'FST_ERR_DEC_ALREADY_PRESENT', 'FST_ERR_DEC_DEPENDENCY_INVALID_TYPE',
      'FST_ERR_DEC_MISSING_DEPENDENCY', 'FST_ERR_DEC_AFTER_START', 'FST_ERR_DEC_REFERENCE_TYPE', 'FST_ERR_DEC_UNDECLARED', 'FST_ERR_HOOK_INVALID_TYPE',
      'FST_ERR_HOOK_INVALID_HANDLER', 'FST_ERR_HOOK_INVALID_ASYNC_HANDLER', 'FST_ERR_HOOK_NOT_SUPPORTED', 'FST_ERR_MISSING_MIDDLEWARE',
      'FST_ERR_LOG_INVALID_DESTINATION', 'FST_ERR_LOG_INVALID_LOGGER', 'FST_ERR_LOG_INVALID_LOGGER_INSTANCE', 'FST_ERR_LOG_INVALID_LOGGER_CONFIG',
      'FST_ERR_LOG_LOGGER_AND_LOGGER_INSTANCE_PROVIDED', 'FST_ERR_LOG_INVALID_LOG_CONTROLLER', 'FST_ERR_SCH_MISSING_ID', 'FST_ERR_SCH_ALREADY_PRESENT',
      'FST_ERR_SCH_CONTENT_MISSING_SCHEMA', 'FST_ERR_SCH_DUPLICATE', 'FST_ERR_SCH_VALIDATION_BUILD', 'FST_ERR_SCH_SERIALIZATION_BUILD',
      'FST_ERR_SCH_RESPONSE_SCHEMA_NOT_NESTED_2XX', 'FST_ERR_INIT_OPTS_INVALID', 'FST_ERR_FORCE_CLOSE_CONNECTIONS_IDLE_NOT_AVAILABLE',
      'FST_ERR_DUPLICATED_ROUTE', 'FST_ERR_INVALID_URL', 'FST_ERR_ROUTE_OPTIONS_NOT_OBJ', 'FST_ERR_ROUTE_DUPLICATED_HANDLER', 'FST_ERR_ROUTE_HANDLER_NOT_FN',
      'FST_ERR_ROUTE_MISSING_HANDLER', 'FST_ERR_ROUTE_METHOD_INVALID', 'FST_ERR_ROUTE_METHOD_NOT_SUPPORTED', 'FST_ERR_ROUTE_LOG_LEVEL_INVALID',
      'FST_ERR_ROUTE_BODY_VALIDATION_SCHEMA_NOT_SUPPORTED', 'FST_ERR_ROUTE_BODY_LIMIT_OPTION_NOT_INT', 'FST_ERR_ROUTE_HANDLER_TIMEOUT_OPTION_NOT_INT',
      'FST_ERR_ROUTE_REWRITE_NOT_STR', 'FST_ERR_REOPENED_CLOSE_SERVER', 'FST_ERR_REOPENED_SERVER', 'FST_ERR_INSTANCE_ALREADY_LISTENING',
      'FST_ERR_PLUGIN_VERSION_MISMATCH', 'FST_ERR_PLUGIN_NOT_PRESENT_IN_INSTANCE', 'FST_ERR_PLUGIN_INVALID_ASYNC_HANDLER',
      'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED', 'FST_ERR_PLUGIN_CALLBACK_NOT_FN', 'FST_ERR_PLUGIN_NOT_VALID', 'FST_ERR_ROOT_PLG_BOOTED',
      'FST_ERR_PARENT_PLUGIN_BOOTED', 'FST_ERR_PLUGIN_TIMEOUT',
    ].map((code) => [code, AT_BUILD]),
  ),
  ...Object.fromEntries(
    [
      'FST_ERR_REP_INVALID_PAYLOAD_TYPE', 'FST_ERR_REP_RESPONSE_BODY_CONSUMED', 'FST_ERR_REP_READABLE_STREAM_LOCKED', 'FST_ERR_REP_ALREADY_SENT',
      'FST_ERR_REP_SENT_VALUE', 'FST_ERR_SEND_INSIDE_ONERR', 'FST_ERR_SEND_UNDEFINED_ERR', 'FST_ERR_BAD_STATUS_CODE', 'FST_ERR_BAD_TRAILER_NAME',
      'FST_ERR_BAD_TRAILER_VALUE', 'FST_ERR_FAILED_ERROR_SERIALIZATION', 'FST_ERR_MISSING_SERIALIZATION_FN', 'FST_ERR_MISSING_CONTENTTYPE_SERIALIZATION_FN',
      'FST_ERR_REQ_INVALID_VALIDATION_INVOCATION',
    ].map((code) => [code, HANDLER_BUG]),
  ),
  FST_ERR_HOOK_TIMEOUT: 'a callback-style hook that never calls done(): every hook of the service is async',
  FST_ERR_NOT_FOUND: "Fastify's fallback when no 404 handler answered (it logs it as a Fastify bug); app.ts sets one, which answers NOT_FOUND",
  FST_ERR_ASYNC_CONSTRAINT: 'raised by asynchronous route constraints; no route has one',
  FST_ERR_HANDLER_TIMEOUT: 'raised only with the handlerTimeout option, which is not set (errors.ts would answer it 503 SERVICE_UNAVAILABLE)',
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: 'raised only for QUERY routes without Content-Type; there are none (QUERY is 404 NOT_FOUND)',
  FST_ERR_ROUTE_MISSING_CONTENT: 'defined but raised nowhere in Fastify 5',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH:
    "Node's HTTP parser hands over exactly Content-Length bytes or fails the connection itself (the clientError cases below); " +
    'only a preParsing hook rewriting the body could make them differ, and there is none (errors.ts would answer 400 VALIDATION_ERROR)',
};

describe("Fastify's errors a request can provoke", () => {
  test.each(PROVOKED.map((c) => [`${c.error}: ${c.how}`, c] as const))('%s', async (_name, c) => {
    expectProblem(await c.send(), c.status, c.code);
  });

  test('every FST_ERR_* of the installed Fastify is provoked above or listed as unreachable, with a reason', () => {
    const requireFromHttp = createRequire(new URL('../../../packages/adapters-http/package.json', import.meta.url));
    const all = Object.keys(requireFromHttp('fastify/lib/errors.js') as Record<string, unknown>).filter((k) => k.startsWith('FST_ERR_'));
    const provoked = new Set(PROVOKED.map((c) => c.error));
    for (const code of provoked) expect(UNREACHABLE, code).not.toHaveProperty(code);
    expect(new Set([...provoked, ...Object.keys(UNREACHABLE)])).toEqual(new Set(all));
  });
});

// ---------------------------------------------------------------------------------------------
// Before Fastify: the router, the URL limit and Node's HTTP parser.

describe('request-level errors raised before a route runs', () => {
  const cases: ReadonlyArray<readonly [string, number, string, () => Promise<Reply>]> = [
    ['an unknown route', 404, 'NOT_FOUND', () => get('/nope')],
    ['an unknown method on a known path', 404, 'NOT_FOUND', () => fetchReply('/products', { method: 'DELETE' })],
    ['a method Fastify has no routes for', 404, 'NOT_FOUND', () => raw('LINK /products HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')],
    ['a malformed percent-encoding in the query string', 400, 'VALIDATION_ERROR', () => get('/products?cursor=%E0%A4%A')],
    ['a URL one character over the limit, in the query string', 414, 'URI_TOO_LONG', () => get(`/products?cursor=${'a'.repeat(MAX_URL - '/products?cursor='.length + 1)}`)],
    ['a URL over the limit on an unknown route', 414, 'URI_TOO_LONG', () => get(`/nope/${'a'.repeat(MAX_URL)}`)],
    ['a URL past the HTTP parser limit', 414, 'URI_TOO_LONG', () => get(`/products?cursor=${'a'.repeat(NODE_HEAD_LIMIT + 100)}`)],
    ['request headers past the HTTP parser limit', 431, 'VALIDATION_ERROR', () => fetchReply('/products', { headers: { 'x-padding': 'a'.repeat(NODE_HEAD_LIMIT + 100) } })],
    ['a control character in the URL', 400, 'VALIDATION_ERROR', () => raw('GET /orders/\u0001 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')],
    ['a space in the URL', 400, 'VALIDATION_ERROR', () => raw('GET /orders/a b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')],
    ['not HTTP at all', 400, 'VALIDATION_ERROR', () => raw('HELLO\r\n\r\n')],
    ['a Content-Length that is not a number', 400, 'VALIDATION_ERROR', () => raw('POST /admin/users HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n')],
  ];
  test.each(cases)('%s: %i %s', async (_name, status, code, send) => {
    expectProblem(await send(), status, code);
  });

  test('a URL exactly at the limit is routed: an order id that long names no order', async () => {
    const path = `/orders/${'a'.repeat(MAX_URL - '/orders/'.length)}`;
    expect(path).toHaveLength(MAX_URL);
    expectProblem(await fetchReply(path, { headers: { authorization: `Bearer ${client.adminToken}` } }), 404, 'ORDER_NOT_FOUND');
  });
});

describe('a server closing, and a request not received in time', () => {
  test('a server closing answers a request still reaching it 503 SERVICE_UNAVAILABLE with Retry-After', async () => {
    const closing = await startTestApp(tdb.url);
    try {
      const server = closing.service.app.server;
      const socket = await connect((server.address() as AddressInfo).port);
      // One request answered, and a second one pipelined behind it whose head is not finished: once
      // the first answer is back, the server has read both, and the connection is busy, not idle.
      const first = new Promise<string>((resolve) => {
        let text = '';
        const onData = (c: Buffer) => {
          text += c.toString('utf8');
          if (text.includes('\r\n\r\n') && text.includes('"status"')) {
            socket.off('data', onData);
            resolve(text);
          }
        };
        socket.on('data', onData);
      });
      socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /products HTTP/1.1\r\nHost: x\r\n');
      expect(parseRaw(await first).status).toBe(200);

      const closed = closing.service.app.close();
      // Fastify stops listening after its preClose hooks ran: from then on it is closing.
      while (server.listening) await new Promise((r) => setTimeout(r, 5));
      const answer = readUntilClosed(socket);
      socket.write('\r\n');
      const reply = await answer;
      expectProblem(reply, 503, 'SERVICE_UNAVAILABLE');
      expect(reply.headers.get('retry-after')).toBe('1');
      await closed;
    } finally {
      await closing.close();
    }
  });

  test('a request not received in full within the request timeout is 408, problem+json', async () => {
    // Only the app (no database): the timeout fires before any route runs. 300 ms instead of 15 s
    // (the head's timeout, 10 s by default, is then 300 ms too).
    const deps = { checkReady: async () => undefined, metrics: { observeRequest: () => undefined } } as unknown as HttpDeps;
    const slow = await buildApp(deps, { requestTimeoutMs: 300 });
    await slow.listen({ port: 0, host: '127.0.0.1' });
    try {
      const to = (slow.server.address() as AddressInfo).port;
      const started = Date.now();
      // Half a request head, then nothing (slowloris).
      const reply = await raw('POST /admin/users HTTP/1.1\r\nHost: x\r\nContent-Type: applic', to);
      expectProblem(reply, 408, 'VALIDATION_ERROR');
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    } finally {
      await slow.close();
    }
  });
});
