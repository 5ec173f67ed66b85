// Browser-test helpers: a tiny static server for dist/, Debian's Chromium via playwright-core, and
// steps shared by the role flows (unlock the demo file, screenshots).

import { createServer, type Server } from 'node:http';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const DIST = resolve(__dirname, '../../dist');
export const SHOTS = resolve(__dirname, '../../test-artifacts/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Serves dist/ on 127.0.0.1 at a free port. */
export async function serveDist(): Promise<Served> {
  statSync(join(DIST, 'index.html')); // fails clearly when the build is missing
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    let file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    if (!file.startsWith(DIST)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((ok) => server.close(() => ok())) };
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Chromium headless with a fresh profile directory. */
export async function launch(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'stormops-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The README's screenshots: the tests write them, so they always show the current UI. */
export const DOCS_SHOTS = resolve(__dirname, '../../../docs/screenshots');

/** Saves a screenshot as a test artefact; `docsName` also copies it to docs/screenshots/ for the README. */
export async function shot(page: Page, name: string, docsName?: string) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  if (docsName) {
    mkdirSync(DOCS_SHOTS, { recursive: true });
    copyFileSync(path, join(DOCS_SHOTS, `${docsName}.png`));
  }
}

/** Collects page errors so a test can assert there were none. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

export const DEMO_PASSPHRASE = 'storm-season-2026';

/** Opens the app with a mock preset and unlocks the demo company file as `user`. */
export async function openAndUnlock(page: Page, base: string, preset: string, user: string) {
  await page.goto(`${base}?mock=${preset}`);
  await page.getByRole('button', { name: /Summit Roofing/ }).click();
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Passphrase', { exact: true }).fill(DEMO_PASSPHRASE);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await page.locator('.syncbar').waitFor();
}
