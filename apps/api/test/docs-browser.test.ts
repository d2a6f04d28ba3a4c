import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { chromiumForTests } from '../../../test/support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';

const executablePath = chromiumForTests();
let tdb: TestDatabase;
let app: TestApp;
let browser: Browser;

beforeAll(async () => {
  if (!executablePath) return;
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
  await app.client.createProduct(4_500, 12, 'Green tea');
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  await tdb?.drop();
});

test.skipIf(!executablePath)('the /docs page in headless Chromium lists the endpoints and runs GET /products from the page', async () => {
  const page = await browser.newPage();
  await page.goto(`${app.client.baseUrl}/docs`);
  const paths = page.locator('.opblock-summary-path');
  await paths.first().waitFor({ timeout: 30_000 });
  const listed = await paths.allTextContents();
  const normalised = listed.map((p) => p.replace(/\u200b/g, '').trim());
  // The order endpoints come first, as a client developer reads the API.
  expect(normalised.slice(0, 5)).toEqual(['/orders', '/orders/{orderId}', '/orders/{orderId}/cancel', '/orders/{orderId}/refunds', '/users/{userId}/orders']);
  for (const expected of ['/orders', '/orders/{orderId}', '/products', '/products/top', '/users/{userId}/balance/charge', '/coupons/{couponId}/issue', '/admin/products']) {
    expect(normalised).toContain(expected);
  }

  // Open GET /products, "Try it out", "Execute": the page itself calls the API.
  const operation = page.locator('.opblock-get').filter({ has: page.locator('.opblock-summary-path', { hasText: /^\/products$/ }) });
  await operation.locator('.opblock-summary').click();
  await operation.locator('.try-out__btn').click();
  await operation.locator('.execute').click();
  const live = operation.locator('.live-responses-table');
  await live.waitFor({ timeout: 30_000 });
  await expect.poll(() => live.locator('tr.response .response-col_status').first().textContent()).toContain('200');
  expect(await live.locator('tr.response .response-col_description').first().textContent()).toContain('Green tea');
  await page.close();
});
