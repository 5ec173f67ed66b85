// Browser tests of every role's main flow against the built UI with the mocked bridge, with screenshots.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { Page } from 'playwright-core';
import { launch, openAndUnlock, serveDist, shot, watchErrors, type Browser, type Served } from './helpers';

let server: Served;
let browser: Browser;
let page: Page;
let errors: string[];

beforeAll(async () => {
  server = await serveDist();
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});
beforeEach(async () => {
  page = await browser.context.newPage();
  await page.goto(server.url);
  await page.evaluate(() => localStorage.clear());
  errors = watchErrors(page);
});
afterEach(async () => {
  await page.close();
  expect(errors, 'no page errors').toEqual([]);
});

const count = async () => (await page.getByTestId('result-count').textContent()) ?? '';
const countNumber = async () => Number((await count()).replace(/[^0-9].*$/, '').replace(/,/g, '') || (await count()).match(/^[\d,]+/)?.[0].replace(/,/g, ''));

describe('everyone', () => {
  test('create a company file: recovery key once, unlock, sign in', async () => {
    await page.goto(`${server.url}?mock=field`);
    await expect.poll(() => page.getByRole('heading', { name: 'Open a company file' }).isVisible()).toBe(true);
    await shot(page, '01-tenant-choose');
    await page.getByRole('button', { name: 'Create a company file' }).click();
    await page.getByLabel('Company name').fill('Prairie Roofing Co');
    await page.getByLabel('Your user name on this laptop').fill('ana');
    await page.locator('input[name=passphrase]').fill('short');
    await page.locator('input[name=confirm]').fill('short');
    await page.getByRole('button', { name: 'Create file' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/at least 8 characters/);
    await page.locator('input[name=passphrase]').fill('hail-season-2026');
    await page.locator('input[name=confirm]').fill('hail-season-2026');
    await page.getByRole('button', { name: 'Create file' }).click();

    const key = page.getByTestId('recovery-key');
    await key.waitFor();
    expect((await key.textContent())?.replace(/-/g, '')).toMatch(/^[0-9a-f]{64}$/);
    const cont = page.getByRole('button', { name: 'Continue' });
    expect(await cont.isDisabled()).toBe(true);
    await shot(page, '02-recovery-key');
    await page.getByLabel('I have saved the recovery key somewhere safe').check();
    expect(await cont.isEnabled()).toBe(true);
    await cont.click();

    await page.getByRole('heading', { name: 'Unlock Prairie Roofing Co' }).waitFor();
    expect(await page.getByLabel('User name').inputValue()).toBe('ana');
    await shot(page, '02b-unlock', 'unlock');
    await page.getByLabel('Passphrase', { exact: true }).fill('wrong-passphrase');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/does not open this file/);
    await page.getByLabel('Passphrase', { exact: true }).fill('hail-season-2026');
    await page.getByRole('button', { name: 'Unlock' }).click();

    await page.getByRole('heading', { name: "Sign in to your company's server" }).waitFor();
    expect(await page.locator('.syncbar').getAttribute('data-connectivity')).toBe('needs_sign_in');
    await shot(page, '03-sign-in');
    await page.getByLabel('Email').fill('sam.patel@summitroofing.example');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/Email or password is wrong/);
    await page.getByLabel('Password').fill('field-pass');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Properties' }).waitFor();
    await expect.poll(count).toMatch(/1,200 properties/);
  });

  test('sync runs in the background; inbox retry, edit and discard', async () => {
    await openAndUnlock(page, server.url, 'field', 'sam');
    const bar = page.locator('.syncbar');
    expect(await page.getByTestId('sync-pending').textContent()).toMatch(/3 waiting to sync · oldest 1 h 35 min/);
    await expect.poll(count).toMatch(/1,200/);
    await page.locator('#property-list').evaluate((el) => (el.scrollTop = 76 * 500));
    await expect.poll(() => page.locator('.prow-loading').count()).toBe(0);
    await page.getByRole('button', { name: 'Sync now' }).click();
    await expect.poll(() => bar.getAttribute('data-connectivity')).toBe('syncing');
    // The UI stays usable during sync: the list still scrolls and renders.
    await page.locator('#property-list').evaluate((el) => (el.scrollTop = 76 * 600));
    await expect.poll(async () => Number(await page.locator('.vrow').first().getAttribute('data-index'))).toBeGreaterThan(550);
    await shot(page, '04-syncing', 'sync-bar-syncing');
    await expect.poll(() => bar.getAttribute('data-connectivity'), { timeout: 5000 }).toBe('online');
    expect(await page.getByTestId('sync-pending').textContent()).toBe('Nothing waiting to sync');
    expect(await page.getByTestId('sync-last').textContent()).toMatch(/just now/);
    // The list reloaded after the sync without losing the rows in view.
    await expect.poll(() => page.locator('.prow-loading').count()).toBe(0);
    expect(Number(await page.locator('.prow-rank').first().textContent())).toBeGreaterThan(550);

    await page.getByRole('link', { name: /2 changes refused/ }).click();
    await page.getByRole('heading', { name: 'Inbox' }).waitFor();
    const items = page.getByTestId('inbox-item');
    await expect.poll(() => items.count()).toBe(2);
    await shot(page, '05-inbox', 'inbox');
    await items.filter({ hasText: 'Outcome' }).getByRole('button', { name: 'Discard' }).click();
    await expect.poll(() => items.count()).toBe(1);
    await items.first().getByRole('button', { name: 'Edit…' }).click();
    const dialog = page.locator('#edit-dialog');
    await dialog.getByRole('heading', { name: 'Edit the refused change' }).waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.isVisible()).toBe(false);
    await items.first().getByRole('button', { name: 'Edit…' }).click();
    const text = await dialog.locator('textarea').inputValue();
    const payload = JSON.parse(text);
    payload.occurred_at = Date.now() - 3_600_000;
    await dialog.locator('textarea').fill(JSON.stringify(payload, null, 2));
    await dialog.getByRole('button', { name: 'Save and retry' }).click();
    await expect.poll(() => page.getByText('The inbox is empty').isVisible()).toBe(true);
    // The sync bar takes the new count from the status event the retry emits, which can land after
    // the inbox has reloaded: wait for it rather than read it once.
    await expect.poll(() => page.getByTestId('sync-pending').textContent()).toMatch(/1 waiting to sync/);
  });

  test('offline: sync says so in plain words and keeps the work', async () => {
    await page.goto(`${server.url}?mock=field&net=offline`);
    await page.getByRole('button', { name: /Summit Roofing/ }).click();
    await page.getByLabel('Passphrase', { exact: true }).fill('storm-season-2026');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.getByRole('button', { name: 'Sync now' }).click();
    const bar = page.locator('.syncbar');
    await expect.poll(() => bar.textContent()).toMatch(/No connection\. Your work is kept on this laptop/);
    expect(await bar.getAttribute('data-connectivity')).toBe('offline');
    expect(await page.getByTestId('sync-pending').textContent()).toMatch(/3 waiting/);
    await shot(page, '06-offline', 'offline');
  });

  test('keyboard: visible focus ring, big targets, Tab reaches the navigation', async () => {
    await openAndUnlock(page, server.url, 'field', 'sam');
    await expect.poll(count).toMatch(/1,200/);
    // The page heading has focus after navigation; Shift+Tab walks back into the navigation.
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    let reached = false;
    for (let i = 0; i < 12 && !reached; i += 1) {
      await page.keyboard.press('Shift+Tab');
      reached = (await page.evaluate(() => document.activeElement?.textContent)) === 'Inbox';
    }
    expect(reached).toBe(true);
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle);
    await page.locator('.skip-link').focus();
    expect(await page.locator('.skip-link').evaluate((el) => el.getBoundingClientRect().left)).toBeGreaterThanOrEqual(0);
    await page.getByRole('link', { name: 'Inbox', exact: true }).focus();
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Inbox' }).waitFor();
    // Every button and link in the bars and navigation is at least 44 px tall (gloved hands).
    const small = await page.evaluate(() =>
      [...document.querySelectorAll('nav a, main button, .topbar button, .syncbar button, .syncbar a')].filter((el) => el.getClientRects().length > 0 && el.getBoundingClientRect().height < 44).map((el) => el.textContent),
    );
    expect(small).toEqual([]);
  });

  test('sunlight theme toggles and is remembered', async () => {
    await openAndUnlock(page, server.url, 'field', 'sam');
    await page.getByRole('button', { name: /Sunlight/ }).click();
    // The click returns before the re-render applies the theme: wait for it rather than race it.
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('contrast');
    await expect.poll(() => page.evaluate(() => localStorage.getItem('stormops.theme'))).toBe('contrast');
    await expect.poll(count).toMatch(/1,200/);
    await page.waitForTimeout(200);
    await shot(page, '07-field-sunlight', 'sunlight-theme');
    await page.reload();
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('contrast');
  });
});

describe('field user', () => {
  test('filter, search, open a property, log a touch, confirm the policy', async () => {
    await openAndUnlock(page, server.url, 'field', 'sam');
    await expect.poll(count).toMatch(/^1,200 properties/);
    await page.waitForTimeout(200);
    await shot(page, '10-field-list', 'field-ranked-list-and-map');

    await page.locator('select[name=decision]').selectOption('treat');
    await expect.poll(count).not.toMatch(/^1,200 /);
    const treated = await countNumber();
    expect(treated).toBeGreaterThan(0);
    expect(treated).toBeLessThan(1200);
    expect(await page.locator('.prow .badge-treat').count()).toBeGreaterThan(0);
    expect(await page.locator('.prow .badge-hold').count()).toBe(0);

    // "/" focuses the search from anywhere.
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    await page.keyboard.press('/');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('search');
    const firstAddress = (await page.locator('.prow-address').first().textContent()) ?? '';
    const street = firstAddress.split(',')[0].split(' ').slice(1).join(' ');
    await page.keyboard.type(street);
    await expect.poll(async () => (await countNumber()) < treated).toBe(true);
    const addresses = await page.locator('.prow-address').allTextContents();
    expect(addresses.length).toBeGreaterThan(0);
    for (const a of addresses) expect(a.toLowerCase()).toContain(street.toLowerCase());

    // Keyboard: into the list, Enter opens the focused row.
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: firstAddress }).waitFor();
    expect(await page.getByText('Overrides are made by your crew chief.').isVisible()).toBe(true);
    await page.getByRole('radio', { name: 'Door knock' }).click();
    await page.getByRole('radio', { name: 'Interested', exact: true }).click();
    await page.getByLabel('Notes (optional)').fill('Owner saw dents on the gutters; inspection Thursday.');
    await page.getByRole('button', { name: /Log door knock — interested/ }).click();
    await expect.poll(() => page.getByTestId('timeline').textContent()).toContain('inspection Thursday');
    await expect.poll(() => page.locator('.badges').textContent()).toMatch(/waiting to sync/);
    await page.getByRole('button', { name: /^Confirm (treat|hold)$/ }).click();
    await expect.poll(() => page.locator('.toast').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/Decision confirmed/)]));
    await page.getByRole('radio', { name: 'Signed a contract' }).click();
    await page.getByLabel('Contract value (dollars)').fill('14,500');
    await page.getByRole('button', { name: 'Log outcome' }).click();
    await expect.poll(() => page.getByTestId('timeline').textContent()).toContain('Contract signed: $14,500');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, '11-property-page', 'property-page-timeline');
    // Back keeps the filters.
    await page.getByRole('link', { name: '← Back to the list' }).click();
    expect(await page.locator('select[name=decision]').inputValue()).toBe('treat');
  });

  test('50,000 properties: filters update and only a window of rows is rendered', async () => {
    await openAndUnlock(page, server.url, 'big', 'sam');
    await expect.poll(count, { timeout: 20_000 }).toMatch(/^50,000 properties/);
    const list = page.locator('#property-list');
    expect(await list.getAttribute('data-count')).toBe('50000');
    const rendered = await page.locator('.vrow').count();
    expect(rendered).toBeGreaterThan(3);
    expect(rendered).toBeLessThan(60);
    await page.waitForTimeout(200);
    await shot(page, '12-field-50k');

    await page.locator('#search').fill('cedar ridge');
    await expect.poll(async () => (await list.getAttribute('data-count')) !== '50000').toBe(true);
    const filtered = Number(await list.getAttribute('data-count'));
    expect(filtered).toBeGreaterThan(100);
    expect(filtered).toBeLessThan(50_000);
    expect(await page.locator('.vrow').count()).toBeLessThan(60);
    for (const a of await page.locator('.prow-address').allTextContents()) expect(a.toLowerCase()).toContain('cedar ridge');

    await page.locator('select[name=status]').selectOption('new');
    await expect.poll(async () => Number(await list.getAttribute('data-count')) < filtered).toBe(true);

    // Scrolling deep renders rows from the middle of the list, still only a window.
    await page.locator('#search').fill('');
    await page.locator('select[name=status]').selectOption('');
    await expect.poll(() => list.getAttribute('data-count')).toBe('50000');
    await list.evaluate((el) => (el.scrollTop = 76 * 25_000));
    await expect.poll(async () => Number(await page.locator('.vrow').first().getAttribute('data-index'))).toBeGreaterThan(24_000);
    await expect.poll(() => page.locator('.prow-loading').count()).toBe(0);
    expect(await page.locator('.vrow').count()).toBeLessThan(60);
    expect(Number(await page.locator('.prow-rank').first().textContent())).toBeGreaterThan(24_000);
  });
});

describe('crew chief', () => {
  test('override with a required reason; Escape closes the dialog', async () => {
    await openAndUnlock(page, server.url, 'chief', 'marco');
    await expect.poll(count).toMatch(/1,200/);
    await page.locator('.prow').first().click();
    await page.getByRole('button', { name: /Override to/ }).waitFor();
    const overrideTo = ((await page.getByRole('button', { name: /Override to/ }).textContent()) ?? '').match(/Override to (\w+)/)![1];
    await page.getByRole('button', { name: /Override to/ }).click();
    const dialog = page.locator('#override-dialog');
    await dialog.getByRole('heading').waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.isVisible()).toBe(false);
    await page.getByRole('button', { name: /Override to/ }).click();
    await dialog.getByRole('button', { name: 'Save override' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/A required value is missing/);
    await dialog.getByLabel('Reason (required)').fill('Owner is a retired roofer and will only deal with the insurer.');
    await shot(page, '20-override-dialog');
    await dialog.getByRole('button', { name: 'Save override' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    await expect.poll(() => page.getByTestId('timeline').textContent()).toContain(`Override: ${overrideTo}`);
    expect(await page.getByTestId('timeline').textContent()).toContain('retired roofer');
  });

  test("the crew's day, territories and sync health", async () => {
    await openAndUnlock(page, server.url, 'chief', 'marco');
    await page.getByRole('link', { name: 'Crew day' }).click();
    await page.getByTestId('crew-table').waitFor();
    expect(await page.locator('[data-testid=crew-table] tbody tr').count()).toBeGreaterThan(1);
    expect(await page.locator('select[name=crew] option:checked').textContent()).toBe('Crew Reyes');
    expect(await page.getByTestId('crew-stats').textContent()).toMatch(/Conversions/);
    await shot(page, '21-crew-day');
    await page.getByRole('link', { name: 'Territories' }).click();
    await expect.poll(() => page.getByTestId('territory').count()).toBe(6);
    await shot(page, '22-territories');
    await page.getByRole('link', { name: 'Sync health' }).click();
    await page.getByTestId('sync-health').waitFor();
    // This laptop first with what it holds; the crew's other laptops as the server saw them.
    const rows = page.locator('[data-testid=sync-health] tbody tr');
    expect(await rows.count()).toBeGreaterThan(2);
    expect(await rows.first().textContent()).toContain('this laptop');
    expect(await rows.first().locator('td.num').first().textContent()).toMatch(/^\d+$/);
    expect(await rows.nth(1).locator('[aria-label="not reported"]').count()).toBe(1);
    expect(await page.locator('[data-testid=sync-health] .badge-alert').count()).toBeGreaterThan(0);
    await shot(page, '23-sync-health', 'chief-sync-health');
    // Offline, the chief still sees this laptop, and is told why the others are missing.
    await page.evaluate(() => (window as unknown as { __stormops: { mock: { setOnline(v: boolean): void } } }).__stormops.mock.setOnline(false));
    await page.getByRole('link', { name: 'Crew day' }).click();
    await page.getByRole('link', { name: 'Sync health' }).click();
    await page.getByTestId('sync-health-local-only').waitFor();
    expect(await page.getByTestId('sync-health-local-only').textContent()).toMatch(/this laptop only/i);
    expect(await rows.count()).toBe(1);
    await page.evaluate(() => (window as unknown as { __stormops: { mock: { setOnline(v: boolean): void } } }).__stormops.mock.setOnline(true));
  });
});

describe('office admin', () => {
  test('storm list and CSV import with a per-line error report', async () => {
    await openAndUnlock(page, server.url, 'office', 'dana');
    await page.getByRole('heading', { name: 'Storms & import' }).waitFor();
    await expect.poll(() => page.locator('[data-testid=storms] tbody tr').count()).toBe(2);
    const csv = ['external_id,address,latitude,longitude,roof_material,owner_name', 'NEW-1,"101 Lindsey St, Norman, OK",35.21,-97.44,metal,Rosa Diaz', 'NEW-2,"202 Berry Rd, Norman, OK",135.2,-97.45,tile,Omar Ali', 'NEW-3,,35.2,-97.46,asphalt_shingle,'].join('\n');
    await page.getByLabel('Or paste the CSV').fill(csv);
    await page.getByRole('button', { name: 'Import' }).click();
    const report = page.getByTestId('import-errors');
    await report.waitFor();
    expect(await report.textContent()).toMatch(/Nothing was imported/);
    const rows = await report.locator('tbody tr').allTextContents();
    expect(rows).toEqual(['3latitudelatitude must be between -90 and 90', '4addressaddress is required']);
    await shot(page, '30-import-errors');
    await page.getByLabel('Or paste the CSV').fill(csv.replace('135.2', '35.2').replace('NEW-3,,', 'NEW-3,"303 Alameda St, Norman, OK",'));
    await page.getByRole('button', { name: 'Import' }).click();
    await expect.poll(() => page.getByText('Imported 3 properties.').isVisible()).toBe(true);
  });

  test('experiment lift chart, uplift histogram with drift alerts, usage', async () => {
    await openAndUnlock(page, server.url, 'office', 'dana');
    await page.getByRole('link', { name: 'Experiment & lift' }).click();
    const chart = page.locator('svg.lift-chart');
    await chart.waitFor();
    expect(await chart.getAttribute('aria-label')).toMatch(/^Conversion lift \+\d+\.\d pts, 95% interval \+\d+\.\d pts to \+\d+\.\d pts$/);
    expect(await chart.locator('line.ci').count()).toBe(3);
    await shot(page, '31-experiment-lift', 'office-experiment-lift');

    await page.locator('select[name=storm]').selectOption({ label: 'March 28 wind — Moore' });
    await page.getByRole('heading', { name: 'No experiment for this storm yet' }).waitFor();
    await page.getByRole('button', { name: 'Start experiment' }).click();
    await chart.waitFor();

    await page.getByRole('link', { name: 'Uplift health' }).click();
    const hist = page.locator('svg.histogram');
    await hist.waitFor();
    expect(await hist.locator('rect.bar').count()).toBe(22);
    await page.locator('select[name=storm]').selectOption({ label: 'April 14 hail — Norman' });
    const alerts = page.getByTestId('drift-alerts');
    await alerts.waitFor();
    expect(await alerts.textContent()).toMatch(/Recent volume is .*Runbook: check sync backlog, devices, upstream imports, error logs/);
    await shot(page, '32-uplift-health', 'office-uplift-health');

    await page.getByRole('link', { name: 'Usage & plan' }).click();
    await page.getByTestId('usage').waitFor();
    expect(await page.getByTestId('usage').locator('li').count()).toBe(6);
    expect(await page.locator('.alert').textContent()).toMatch(/enterprise plan/);
    await shot(page, '33-usage', 'office-usage');

    await page.getByRole('link', { name: 'Users & crews' }).click();
    await expect.poll(() => page.locator('[data-testid=users] tbody tr').count()).toBe(9);
    await shot(page, '34-users-crews');
  });
});

describe('viewer', () => {
  test('dashboards only, no write controls', async () => {
    await openAndUnlock(page, server.url, 'viewer', 'helen');
    await page.locator('svg.lift-chart').waitFor();
    const nav = await page.locator('nav.sidenav a').allTextContents();
    expect(nav).toEqual(['Experiment & lift', 'Uplift health', 'Crew day', 'Usage & plan']);
    const writeish = /^(Log|Import|New storm|Start experiment|Confirm|Override|Retry|Discard|Edit|Sync now|Save)/;
    const check = async () => {
      for (const name of await page.locator('main button, .syncbar button').allTextContents()) expect(name).not.toMatch(writeish);
      expect(await page.locator('main form button[type=submit]').count()).toBe(0);
    };
    await check();
    await shot(page, '40-viewer-experiment');
    for (const link of ['Uplift health', 'Crew day', 'Usage & plan']) {
      await page.getByRole('link', { name: link }).click();
      await page.locator('main h1').waitFor();
      await page.waitForTimeout(100);
      await check();
    }
    // Typing a write page's address leads back to the dashboards.
    await page.evaluate(() => (location.hash = '#/storms'));
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/experiment');
    await page.evaluate(() => (location.hash = '#/inbox'));
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/experiment');
  });
});
