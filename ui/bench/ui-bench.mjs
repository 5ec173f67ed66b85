// `cargo xtask bench ui`: measures the built UI in Debian's Chromium (playwright-core) with the mocked
// bridge at 50,000 properties (`?mock=big`) and prints one JSON object on stdout:
//   - cold start: page load to the company-file chooser, and unlock (submit) to the first painted rows
//     of the ranked list (typing time excluded), each over fresh browser pages;
//   - filter latency: a filter change (status / decision select) to the updated count painted, p50/p95,
//     and a search (its 140 ms typing debounce included, and excluded);
//   - main-thread long tasks (> 50 ms, PerformanceObserver 'longtask') while the simulated background
//     sync runs and the user filters and scrolls.
// Figures are from this machine; the mock computes filters in JavaScript where the app asks SQLite on a
// blocking thread, so they bound the UI's own cost rather than the whole app's.

import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DIST = resolve(HERE, '../dist');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const COLD_RUNS = Number(process.env.UI_BENCH_COLD_RUNS ?? 5);
const FILTER_RUNS = Number(process.env.UI_BENCH_FILTER_RUNS ?? 60);
const SEARCH_DEBOUNCE_MS = 140;
const PASSPHRASE = 'storm-season-2026';
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.map': 'application/json' };

function serve() {
  statSync(join(DIST, 'index.html'));
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    if (!file.startsWith(DIST)) return res.writeHead(403).end();
    try {
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() })));
}

// Runs in the page before any of its scripts: records when the chooser and the first rows are painted
// (a mutation, then the next animation frame), when the unlock form is submitted, and long tasks.
function instrument() {
  const bench = { tenantAt: null, submitAt: null, rowsAt: null, longtasks: [] };
  window.__bench = bench;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) bench.longtasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  document.addEventListener('submit', () => (bench.submitAt = performance.now()), true);
  new MutationObserver(() => {
    if (bench.tenantAt === null && document.querySelector('.tenant-btn')) {
      bench.tenantAt = -1;
      requestAnimationFrame(() => (bench.tenantAt = performance.now()));
    }
    if (bench.rowsAt === null && bench.submitAt !== null && document.querySelector('.prow[data-property-id]')) {
      bench.rowsAt = -1;
      requestAnimationFrame(() => (bench.rowsAt = performance.now()));
    }
  }).observe(document, { subtree: true, childList: true });
}

async function unlock(page) {
  await page.locator('.tenant-btn').first().click();
  await page.locator('input[name=user]').fill('sam');
  await page.locator('input[name=passphrase]').fill(PASSPHRASE);
  await page.locator('form button[type=submit]').click();
  await page.waitForFunction(() => window.__bench.rowsAt > 0, null, { timeout: 60_000 });
}

/** Changes a control in the page and returns the ms until the result count changed and was painted. */
function timedChange(page, selector, value, kind) {
  return page.evaluate(
    async ({ selector, value, kind }) => {
      const el = document.querySelector(selector);
      const count = document.querySelector('[data-testid=result-count]');
      const before = count.textContent;
      const changed = new Promise((ok) => {
        const mo = new MutationObserver(() => {
          if (count.textContent !== before) {
            mo.disconnect();
            requestAnimationFrame(() => ok(true));
          }
        });
        mo.observe(count, { subtree: true, childList: true, characterData: true });
        setTimeout(() => (mo.disconnect(), ok(false)), 5_000);
      });
      const t0 = performance.now();
      el.value = value;
      el.dispatchEvent(new Event(kind, { bubbles: true }));
      const ok = await changed;
      return ok ? performance.now() - t0 : null;
    },
    { selector, value, kind },
  );
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null;
};
const round = (x) => (x === null ? null : Math.round(x * 10) / 10);

async function main() {
  const server = await serve();
  const profile = mkdtempSync(join(tmpdir(), 'stormops-ui-bench-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
  });
  await context.addInitScript(instrument);
  const chromiumVersion = context.browser()?.version() ?? 'unknown';
  try {
    // Cold start, over fresh pages (the HTTP cache is off: the server says no-store).
    const chooser = [];
    const unlockToRows = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      const page = await context.newPage();
      await page.goto(`${server.url}?mock=big`);
      await page.waitForFunction(() => window.__bench.tenantAt > 0, null, { timeout: 60_000 });
      await unlock(page);
      const b = await page.evaluate(() => window.__bench);
      chooser.push(b.tenantAt);
      unlockToRows.push(b.rowsAt - b.submitAt);
      await page.close();
    }

    // Filters and search on one unlocked page.
    const page = await context.newPage();
    await page.goto(`${server.url}?mock=big`);
    await page.waitForFunction(() => window.__bench.tenantAt > 0, null, { timeout: 60_000 });
    await unlock(page);
    const total = await page.locator('[data-testid=result-count]').textContent();
    const filters = [];
    const searches = [];
    let missed = 0;
    const statuses = ['', 'new', 'in_progress', 'inspected'];
    const decisions = ['treat', 'hold', ''];
    for (let i = 0; i < FILTER_RUNS; i++) {
      const [selector, value] = i % 2 === 0 ? ['select[name=decision]', decisions[(i / 2) % decisions.length]] : ['select[name=status]', statuses[((i - 1) / 2) % statuses.length]];
      const ms = await timedChange(page, selector, value, 'change');
      if (ms === null) missed += 1;
      else filters.push(ms);
    }
    await timedChange(page, 'select[name=decision]', '', 'change');
    await timedChange(page, 'select[name=status]', '', 'change');
    const terms = ['oak', 'elm', 'pine', 'wil', 'ave', 'moore', 'cir', 'norman', 'way', 'ln'];
    for (let i = 0; i < 20; i++) {
      const ms = await timedChange(page, '#search', terms[i % terms.length] + (i >= terms.length ? ' ' : ''), 'input');
      if (ms === null) missed += 1;
      else searches.push(ms);
    }
    await timedChange(page, '#search', '', 'input');

    // Long tasks while the simulated sync runs and the user keeps filtering and scrolling.
    const longBefore = (await page.evaluate(() => window.__bench.longtasks.length)) ?? 0;
    const syncStart = await page.evaluate(() => performance.now());
    await page.getByRole('button', { name: 'Sync now' }).click();
    const duringSync = [];
    for (let i = 0; i < 12; i++) {
      const ms = await timedChange(page, 'select[name=decision]', decisions[i % decisions.length], 'change');
      if (ms !== null) duringSync.push(ms);
      await page.mouse.wheel(0, 600);
    }
    await page.waitForFunction(() => document.querySelector('.syncbar')?.dataset.connectivity !== 'syncing', null, { timeout: 60_000 });
    const syncEnd = await page.evaluate(() => performance.now());
    const long = (await page.evaluate(() => window.__bench.longtasks)).slice(longBefore).filter((t) => t.start >= syncStart && t.start <= syncEnd);
    await page.close();

    const result = {
      chromium: chromiumVersion,
      properties: total,
      cold_runs: COLD_RUNS,
      chooser_ms_p50: round(pct(chooser, 50)),
      unlock_to_rows_ms_p50: round(pct(unlockToRows, 50)),
      unlock_to_rows_ms_max: round(Math.max(...unlockToRows)),
      cold_start_ms_p50: round(pct(chooser, 50) + pct(unlockToRows, 50)),
      filter_runs: filters.length,
      filter_ms_p50: round(pct(filters, 50)),
      filter_ms_p95: round(pct(filters, 95)),
      filter_ms_max: round(Math.max(...filters)),
      search_runs: searches.length,
      search_ms_p50: round(pct(searches, 50)),
      search_ms_p95: round(pct(searches, 95)),
      search_debounce_ms: SEARCH_DEBOUNCE_MS,
      missed_updates: missed,
      sync_window_ms: round(syncEnd - syncStart),
      sync_filter_ms_p50: round(pct(duringSync, 50)),
      sync_long_tasks: long.length,
      sync_long_task_max_ms: round(long.length ? Math.max(...long.map((t) => t.duration)) : 0),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
