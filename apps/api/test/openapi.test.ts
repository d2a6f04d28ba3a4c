import { createConfig, lintFromString } from '@redocly/openapi-core';
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { makeTempDir, removeTempDir } from '../../../test/support/temp.ts';

/**
 * /openapi.json as a client generator meets it: linted with Redocly's recommended rules, every
 * operation named and its security said, and a client written against the types openapi-typescript
 * generates from it type-checks (and runs).
 */

interface Operation {
  operationId?: string;
  security?: Array<Record<string, string[]>>;
}
interface Document {
  servers?: Array<{ url: string }>;
  paths: Record<string, Record<string, Operation>>;
}

/** The client written against the generated types (see its header). */
const clientFixture = fileURLToPath(new URL('./openapi-client/calls.ts', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * Rules of the recommended set turned off, each with its reason; nothing else may be reported.
 */
const RULES_OFF: Record<string, string> = {
  // Nothing to name: the project has no license (no LICENSE file, none in package.json), and the
  // document must not claim one the project has not chosen. Add info.license when it has one.
  'info-license': 'the project has no license to name',
};

/** The contract's public endpoints (docs/api-contract.md, Authentication); /docs and /openapi.json are not listed. */
const PUBLIC_OPERATIONS = ['GET /health/live', 'GET /health/ready', 'GET /products', 'GET /products/top', 'GET /products/{productId}'];

let tdb: TestDatabase;
let app: TestApp;
let text: string;
let doc: Document;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // No relay: the events of the client's order stay pending, for it to list and redeliver one.
  app = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off' });
  const res = await fetch(`${app.client.baseUrl}/openapi.json`);
  expect(res.status).toBe(200);
  text = await res.text();
  doc = JSON.parse(text) as Document;
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([route, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${route}`, ...operation })),
  );

test("/openapi.json passes Redocly's recommended rules: no errors, no warnings", async () => {
  const config = await createConfig({
    extends: ['recommended'],
    rules: Object.fromEntries(Object.keys(RULES_OFF).map((rule) => [rule, 'off'])),
  });
  const problems = await lintFromString({ source: text, absoluteRef: 'openapi.json', config });
  expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} (${p.location[0]?.pointer ?? ''})`)).toEqual([]);
});

test('every operation has a unique camelCase operationId; the public ones say security: [], the others a bearer token', () => {
  const ops = operations();
  expect(ops.length).toBeGreaterThan(0);
  expect(ops.filter((op) => !/^[a-z][a-zA-Z0-9]*$/.test(op.operationId ?? '')).map((op) => op.name), 'operations without a camelCase operationId').toEqual([]);
  const ids = ops.map((op) => op.operationId);
  expect(ids.filter((id, i) => ids.indexOf(id) !== i), 'operationIds used twice').toEqual([]);

  // security: [] says "no token" explicitly; absent would say nothing at all (no root-level security).
  expect(ops.filter((op) => op.security === undefined).map((op) => op.name), 'operations that do not say their security').toEqual([]);
  const isPublic = (op: Operation) => Array.isArray(op.security) && op.security.length === 0;
  expect(ops.filter(isPublic).map((op) => op.name).sort()).toEqual([...PUBLIC_OPERATIONS].sort());
  for (const op of ops.filter((o) => !isPublic(o))) expect(op.security, op.name).toEqual([{ bearerAuth: [] }]);
  expect(doc.servers?.length, 'servers').toBeGreaterThan(0);
});

test('a client written against the types openapi-typescript generates from it type-checks, calls every operation, and runs', async () => {
  const dir = makeTempDir('openapi-client-');
  try {
    await writeFile(path.join(dir, 'openapi.ts'), astToString(await openapiTS(text)));
    await copyFile(clientFixture, path.join(dir, 'calls.ts'));
    await writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          lib: ['ES2023', 'DOM'],
          module: 'esnext',
          moduleResolution: 'bundler',
          strict: true,
          noUncheckedIndexedAccess: true,
          allowImportingTsExtensions: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['calls.ts'],
      }),
    );
    const checked = await promisify(execFile)(process.execPath, [tsc, '-p', dir]).then(
      () => '',
      (err: { stdout?: string; stderr?: string; message: string }) => err.stdout || err.stderr || err.message,
    );
    expect(checked, 'tsc on the client of the generated types').toBe('');
  } finally {
    await removeTempDir(dir);
  }

  // The type check holds every operationId to a [method, path]; the calls themselves are checked here.
  const source = await readFile(clientFixture, 'utf8');
  const calls = new Set([...source.matchAll(/\bapi\((?:admin|token|null), '(\w+)'/g)].map((m) => m[1]));
  const uncalled = operations().filter((op) => !calls.has(op.operationId));
  expect(uncalled.map((op) => `${op.name} (${op.operationId})`), 'operations the client never calls').toEqual([]);

  // Requests typed by the document alone are accepted as it says, for real.
  const client = (await import(/* @vite-ignore */ clientFixture)) as {
    callEveryOperation(baseUrl: string, admin: string, userToken: (userId: number) => Promise<string>): Promise<void>;
  };
  await client.callEveryOperation(app.client.baseUrl, app.client.adminToken, (userId) => app.client.userToken(userId));
});
