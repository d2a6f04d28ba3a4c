import fc from 'fast-check';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { secretBytes, startTestApp, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';

/**
 * Property-based fuzzing of every route the OpenAPI document lists: random and malformed
 * requests built from the document itself, sent to the real server. Whatever is sent: never a
 * 5xx, never a dropped connection, every error problem+json, and the invariants still hold.
 * A failure prints fast-check's seed and the shrunk request; FUZZ_SEED replays it.
 */
type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  maxItems?: number;
  format?: string;
};
type Parameter = { in: 'path' | 'query' | 'header'; name: string; schema: Schema };
type Operation = { method: string; path: string; parameters: Parameter[]; body: Schema | null };

let tdb: TestDatabase;
let app: TestApp;
let operations: Operation[];
const known = { users: [] as number[], products: [] as number[], coupons: [] as number[], orders: [] as string[] };
const tokens: Record<string, string | null> = {};

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
  const { client } = app;
  for (let i = 0; i < 3; i++) known.users.push((await client.createUser(1_000_000)).userId);
  for (let i = 0; i < 3; i++) known.products.push(await client.createProduct(1_000 * (i + 1), 50));
  known.coupons.push(await client.createCoupon({ discountType: 'FIXED', discountValue: 500, totalQuantity: 10 }));
  await client.grant(known.coupons[0]!, known.users[0]!);
  const placed = await client.post(
    '/orders',
    { userId: known.users[0], items: [{ productId: known.products[0], quantity: 1 }] },
    { token: await client.userToken(known.users[0]!) },
  );
  known.orders.push(placed.body.orderId);

  tokens.none = null;
  tokens.admin = client.adminToken;
  tokens.user = await client.userToken(known.users[0]!);
  tokens.otherUser = await client.userToken(known.users[1]!);
  tokens.garbage = 'not.a.token';
  tokens.expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(String(known.users[0])).setExpirationTime(1).sign(secretBytes);

  const doc = (await fetch(`${client.baseUrl}/openapi.json`).then((r) => r.json())) as {
    paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
  };
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content['application/json']?.schema ?? null,
    })),
  );
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

const oddNumbers = fc.constantFrom(0, -1, 1.5, -0.5, 2 ** 53, 2 ** 53 + 2, 1e20, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER);
const oddStrings = fc.constantFrom('', ' ', '0', '-1', '1.5', 'abc', '1e3', '0x10', '9007199254740993', '99999999999999999999', '%', '..', 'null', '\u0000', '🙂', '<script>');

/** Values near and outside a schema's rules, and of the wrong type. */
function valueFor(schema: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 3) return fc.jsonValue({ maxDepth: 2 });
  const wrongType = fc.oneof(fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
  switch (schema.type) {
    case 'integer': {
      const min = schema.minimum ?? -1_000;
      const max = Math.min(schema.maximum ?? 1_000_000, 2 ** 53);
      return fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: Math.max(-(2 ** 31), min - 2), max: Math.min(2 ** 31, min + 5) }) },
        { weight: 2, arbitrary: fc.integer({ min: Math.max(min, max - 3), max: Math.min(max + 3, 2 ** 53) }) },
        { weight: 2, arbitrary: oddNumbers },
        { weight: 3, arbitrary: fc.constantFrom(...known.users, ...known.products, ...known.coupons) },
        { weight: 1, arbitrary: wrongType },
      );
    }
    case 'string':
      return fc.oneof(
        ...(schema.enum ? [fc.constantFrom(...schema.enum)] : []),
        fc.string({ maxLength: (schema.maxLength ?? 20) + 5 }),
        oddStrings,
        wrongType,
      );
    case 'array':
      return fc.oneof(
        fc.array(valueFor(schema.items, depth + 1), { maxLength: 4 }),
        fc.array(valueFor(schema.items, depth + 1), { minLength: (schema.maxItems ?? 3) - 1, maxLength: (schema.maxItems ?? 3) + 2 }),
        wrongType,
      );
    case 'object': {
      const props = Object.entries(schema.properties ?? {});
      const fields = Object.fromEntries(props.map(([k, v]) => [k, valueFor(v, depth + 1)]));
      const record = fc.record(fields, { requiredKeys: [] });
      return fc.oneof(
        // Every field present reaches the business rules more often than a partial body does.
        { weight: 4, arbitrary: fc.record(fields) },
        { weight: 3, arbitrary: record },
        { weight: 1, arbitrary: record.map((r) => ({ ...r, unexpected: 1 })) },
        { weight: 1, arbitrary: wrongType },
      );
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function parameterValue(p: Parameter): fc.Arbitrary<string> {
  if (p.name === 'orderId' || p.name === 'eventId' || p.schema.format === 'uuid') {
    // Opaque ids: any text names an order or none (404), never a 400 for its shape.
    return fc.oneof(fc.uuid(), fc.constantFrom(...known.orders), oddStrings, fc.string({ maxLength: 40 }), fc.string({ minLength: 100, maxLength: 2_000 }));
  }
  return fc.oneof(
    fc.constantFrom(...[...known.users, ...known.products, ...known.coupons].map(String)),
    fc.integer({ min: -5, max: 20_000 }).map(String),
    ...(p.schema.enum ? [fc.constantFrom(...(p.schema.enum as string[]))] : []),
    oddStrings,
    fc.string({ maxLength: 30 }),
  );
}

const request = fc
  .constantFrom(...[0]) // operations are known only after beforeAll: chosen by index below
  .chain(() => fc.nat())
  .chain((n) => {
    const op = operations[n % operations.length]!;
    const params = fc.tuple(...op.parameters.map((p) => (p.in === 'path' ? parameterValue(p).map((v) => [p, v] as const) : fc.option(parameterValue(p)).map((v) => [p, v] as const))));
    const body = op.body
      ? fc.oneof(
          { weight: 6, arbitrary: valueFor(op.body).map((v) => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
          { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((raw) => ({ raw, type: 'application/json' })) },
          { weight: 1, arbitrary: fc.constantFrom('{', '{"userId":', '[1,', '{"amount": 1e309}', '{"amount": 9007199254740993}').map((raw) => ({ raw, type: 'application/json' })) },
          { weight: 1, arbitrary: valueFor(op.body).map((v) => ({ raw: JSON.stringify(v) ?? '', type: 'text/plain' })) },
          { weight: 1, arbitrary: fc.constant({ raw: `{"name":"${'x'.repeat(70_000)}"}`, type: 'application/json' }) },
        )
      : fc.constant(null);
    return fc.record({ op: fc.constant(op), params, body, auth: fc.constantFrom(...Object.keys(tokens)) });
  });

test('random and malformed requests on every documented route: never a 5xx, never a dropped connection, every error problem+json; invariants hold', async () => {
  expect(operations.length).toBeGreaterThanOrEqual(19);
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  await fc.assert(
    fc.asyncProperty(request, async ({ op, params, body, auth }) => {
      let path = op.path;
      const query = new URLSearchParams();
      const headers: Record<string, string> = {};
      for (const [p, v] of params) {
        if (v === null) continue;
        if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(v));
        else if (p.in === 'query') query.set(p.name, v);
        else if (/^[\x20-\x7e]*$/.test(v)) headers[p.name] = v;
      }
      const token = tokens[auth];
      if (token) headers.authorization = `Bearer ${token}`;
      if (body) headers['content-type'] = body.type;
      const url = `${app.client.baseUrl}${path}${query.size ? `?${query}` : ''}`;
      const res = await fetch(url, { method: op.method, headers, body: body?.raw });
      const text = await res.text();
      expect(res.status, `${op.method} ${path} ${text.slice(0, 300)}`).toBeLessThan(500);
      if (res.status >= 400) {
        expect(res.headers.get('content-type'), `${op.method} ${path}`).toMatch(/^application\/problem\+json/);
        const problem = JSON.parse(text) as { status: number; code: string };
        expect(problem.status).toBe(res.status);
        expect(typeof problem.code).toBe('string');
      }
    }),
    { numRuns: 1_500, ...(seed !== undefined ? { seed } : {}) },
  );
  await assertInvariants(tdb);
});

/**
 * Malformed URLs, sent raw: percent-encoding garbage, odd characters, very long paths and query
 * strings, on the documented routes (their parameters replaced) and anywhere else. fetch keeps a
 * bad percent-encoding as it is and encodes what a URL cannot hold, as a client library would.
 * The same rule: never a 5xx, never a dropped connection, every error problem+json.
 */
const garbage = fc.constantFrom(
  '%', '%z', '%zz', '%%', '%E0%A4%A', '%C0%AF', '%FF', '%00', '%0A', '%2F', '%2e%2e', '%25', '%u0041',
  '.', '..', '', ';', "'", '"', '<>', '{}', '|', '^', '`', '\\', '[]', '+', '&', '=', '@', '~', '$', '!', '*', '(', ')',
  '🙂', 'é', '\u00a0', '\u0000', '\u0007', '\t', ' ', '\ufeff', '\ud800',
);
/** Built when the test runs: the known ids and tokens exist only after beforeAll. */
const segment = () => fc.oneof(
  { weight: 4, arbitrary: garbage },
  { weight: 3, arbitrary: fc.array(garbage, { minLength: 2, maxLength: 6 }).map((g) => g.join('')) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12, unit: 'grapheme-composite' }) },
  { weight: 2, arbitrary: fc.constantFrom(...[...known.users, ...known.products, ...known.coupons, ...known.orders].map(String)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 12_000 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 2_000 }).map((n) => '%'.repeat(n)) },
);
const malformedUrl = () => fc
  .tuple(
    fc.oneof(
      // A documented route, its parameters (and now and then a fixed segment) replaced.
      fc.nat().chain((n) => {
        const op = operations[n % operations.length]!;
        const parts = op.path.split('/').map((part, i) =>
          i === 0 ? fc.constant('') : part.startsWith('{') ? segment() : fc.oneof({ weight: 6, arbitrary: fc.constant(part) }, { weight: 1, arbitrary: segment() }),
        );
        return fc.tuple(fc.constant(op.method), fc.tuple(...parts).map((p) => p.join('/')));
      }),
      // Anywhere at all.
      fc.tuple(fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'OPTIONS'), fc.array(segment(), { maxLength: 5 }).map((p) => `/${p.join('/')}`)),
    ),
    fc.option(fc.array(fc.tuple(segment(), fc.option(segment())), { maxLength: 5 }).map((pairs) => pairs.map(([k, v]) => (v === null ? k : `${k}=${v}`)).join('&'))),
    fc.constantFrom(...Object.keys(tokens)),
  )
  .map(([[method, path], query, auth]) => ({ method, path, query, auth }))
  // Past Node's 16 KiB request head the answer is 414 all the same; a URL far past it would be
  // answered before it is read in full, and the reset then races the answer.
  .filter(({ path, query }) => path.length + (query?.length ?? 0) < 30_000);

test('malformed paths and query strings on every route and none: never a 5xx, never a dropped connection, every error problem+json', async () => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  await fc.assert(
    fc.asyncProperty(malformedUrl(), async ({ method, path, query, auth }) => {
      const url = `${app.client.baseUrl}${path}${query === null ? '' : `?${query}`}`;
      const headers: Record<string, string> = {};
      const token = tokens[auth];
      if (token) headers.authorization = `Bearer ${token}`;
      const withBody = method === 'POST' || method === 'PATCH' || method === 'PUT';
      if (withBody) headers['content-type'] = 'application/json';
      const res = await fetch(url, { method, headers, body: withBody ? '{}' : undefined });
      const text = await res.text();
      const what = `${method} ${url.slice(0, 300)} -> ${res.status} ${text.slice(0, 300)}`;
      expect(res.status, what).toBeLessThan(500);
      if (res.status >= 400) {
        expect(res.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
        const problem = JSON.parse(text) as { status: number; code: string };
        expect(problem.status, what).toBe(res.status);
        expect(typeof problem.code, what).toBe('string');
      }
    }),
    { numRuns: 1_000, ...(seed !== undefined ? { seed } : {}) },
  );
  await assertInvariants(tdb);
});
