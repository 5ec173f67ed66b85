// Smoke test: the built app loads and the demo file unlocks into the field list.
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Page } from 'playwright-core';
import { launch, openAndUnlock, serveDist, shot, watchErrors, type Browser, type Served } from './helpers';

let server: Served;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  server = await serveDist();
  browser = await launch();
  page = await browser.context.newPage();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

test('field list loads', async () => {
  const errors = watchErrors(page);
  await openAndUnlock(page, server.url, 'field', 'sam');
  await expect.poll(() => page.getByTestId('result-count').textContent()).toMatch(/1,\d{3} properties/);
  await page.waitForTimeout(300);
  await shot(page, 'smoke-field');
  expect(errors).toEqual([]);
});
