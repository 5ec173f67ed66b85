// Unit tests of the mock bridge: tenant files, role rules, queries at 50,000 rows, writes, outbox,
// inbox and the simulated background sync.
import { describe, expect, test } from 'vitest';
import { COMMAND_NAMES } from './commands';
import { createMockBackend, type MockBackend } from './mock';
import { DEMO_PASSPHRASE } from './mock-data';
import { queryPredicate } from '../filters';
import type { CommandError, SyncStatus } from './types';

const NOW = Date.UTC(2026, 3, 20, 15, 0);
const make = (preset: 'field' | 'chief' | 'office' | 'viewer' | 'big' = 'field', extra = {}) => createMockBackend({ preset, now: () => NOW, syncStepMs: 1, ...extra });

async function unlocked(preset: Parameters<typeof make>[0] = 'field', user = 'sam', extra = {}): Promise<MockBackend> {
  const b = make(preset, extra);
  const [t] = await b.list_tenants({});
  await b.unlock({ tenant_id: t.tenant_id, user, passphrase: DEMO_PASSPHRASE });
  return b;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as CommandError).code;
  }
  return 'resolved';
}

describe('bridge surface', () => {
  test('the mock implements every command of commands.ts', () => {
    const b = make();
    for (const name of COMMAND_NAMES) expect(typeof b[name]).toBe('function');
  });
  test('data is deterministic for a seed', () => {
    const a = make();
    const b = make();
    expect(a.mock.data.rows.slice(0, 5).map((r) => r.property.address)).toEqual(b.mock.data.rows.slice(0, 5).map((r) => r.property.address));
  });
});

describe('tenant files', () => {
  test('create → recovery key once → unlock with the new passphrase; no role until signed in', async () => {
    const b = make();
    const created = await b.create_tenant({ name: 'Prairie Roofing Co', user: 'ana', passphrase: 'correct horse' });
    expect(created.recovery_key).toMatch(/^[0-9a-f]{64}$/);
    expect(await code(b.create_tenant({ name: 'Prairie Roofing Co', user: 'x', passphrase: 'long enough' }))).toBe('store.tenant_exists');
    expect(await code(b.unlock({ tenant_id: created.tenant.tenant_id, user: 'ana', passphrase: 'nope-nope' }))).toBe('store.wrong_passphrase');
    expect(await code(b.unlock({ tenant_id: created.tenant.tenant_id, user: 'bob', passphrase: 'correct horse' }))).toBe('store.unknown_user');
    const s = await b.unlock({ tenant_id: created.tenant.tenant_id, user: 'ana', passphrase: 'correct horse' });
    expect(s).toMatchObject({ role: null, signed_in: false, tenant_name: 'Prairie Roofing Co' });
    expect(await b.storms({})).toEqual([]);
    expect((await b.sync_status({})).connectivity).toBe('needs_sign_in');
    expect(await code(b.sign_in({ server_url: 'https://api.example', tenant_slug: 'prairie', email: 'sam.patel@summitroofing.example', password: 'wrong' }))).toBe('server.invalid_credentials');
    const signed = await b.sign_in({ server_url: 'https://api.example', tenant_slug: 'prairie', email: 'marco.reyes@summitroofing.example', password: 'pw' });
    expect(signed).toMatchObject({ role: 'crew_chief', signed_in: true });
    expect((await b.storms({})).length).toBeGreaterThan(0);
  });
  test('weak passphrases and bad user names are refused with store codes', async () => {
    const b = make();
    expect(await code(b.create_tenant({ name: 'X Co', user: 'ana', passphrase: 'short' }))).toBe('store.weak_passphrase');
    expect(await code(b.create_tenant({ name: 'X Co', user: 'a b', passphrase: 'long enough' }))).toBe('store.invalid_user_name');
  });
  test('commands need an unlocked file', async () => {
    expect(await code(make().storms({}))).toBe('session.locked');
  });
});

describe('queries', () => {
  test('ranked, filtered, paged, counted', async () => {
    const b = await unlocked();
    const [storm] = await b.storms({});
    const q = { storm_id: storm.id, limit: 50, offset: 0 };
    const page = await b.ranked_properties({ query: q });
    expect(page).toHaveLength(50);
    for (let i = 1; i < page.length; i += 1) expect((page[i - 1].uplift ?? -9) >= (page[i].uplift ?? -9)).toBe(true);
    const total = await b.property_count({ query: q });
    expect(total).toBe(1200);
    const treat = await b.property_count({ query: { ...q, decision: 'treat' } });
    const hold = await b.property_count({ query: { ...q, decision: 'hold' } });
    expect(treat + hold).toBeLessThan(total);
    const addr = page[3].property.address.split(',')[0];
    const found = await b.ranked_properties({ query: { ...q, search: addr.toUpperCase() } });
    expect(found.some((r) => r.property.id === page[3].property.id)).toBe(true);
    const [t] = await b.territories({ storm_id: storm.id });
    const inT = await b.ranked_properties({ query: { ...q, territory_id: t.id, limit: 1000 } });
    expect(inT.every((r) => b.mock.data.territoryOf.get(r.property.id) === t.id)).toBe(true);
  });
  test('50,000 properties filter and search in memory', async () => {
    const b = await unlocked('big');
    const [storm] = await b.storms({});
    expect(await b.property_count({ query: { storm_id: storm.id, limit: 0, offset: 0 } })).toBe(50_000);
    const n = await b.property_count({ query: { storm_id: storm.id, search: 'cedar ridge', limit: 0, offset: 0 } });
    expect(n).toBeGreaterThan(100);
    expect(n).toBeLessThan(50_000);
    const page = await b.ranked_properties({ query: { storm_id: storm.id, search: 'cedar ridge', limit: 100, offset: 100 } });
    expect(page.every((r) => r.property.address.toLowerCase().includes('cedar ridge'))).toBe(true);
  });
  test('the filter index agrees with the reference predicate, also after writes', async () => {
    const b = await unlocked();
    const [storm] = await b.storms({});
    const territories = await b.territories({ storm_id: storm.id });
    const rows = b.mock.data.rows;
    const territoryOf = (id: string) => b.mock.data.territoryOf.get(id);
    const check = async () => {
      for (const storm_id of [null, storm.id, 'no-such-storm'])
        for (const status of [null, 'new', 'in_progress', 'contracted'] as const)
          for (const decision of [null, 'treat', 'hold'] as const)
            for (const territory_id of [null, territories[0].id, 'no-such-territory'])
              for (const search of [null, 'oak', 'zzzz']) {
                const query = { storm_id, status, decision, territory_id, search, limit: 0, offset: 0 };
                const p = queryPredicate(query, territoryOf);
                const expected = rows.filter((r, i) => p(r, b.mock.data.searchable[i])).length;
                expect(await b.property_count({ query }), JSON.stringify(query)).toBe(expected);
              }
    };
    await check();
    // Writes change a row's status and decision: the index must follow.
    const [top] = await b.ranked_properties({ query: { storm_id: storm.id, status: 'new', limit: 1, offset: 0 } });
    await b.log_touch({ property_id: top.property.id, storm_id: storm.id, channel: 'door_knock', result: 'interested', notes: '' });
    await b.decide({ property_id: top.property.id, storm_id: storm.id, decision: 'hold', mode: 'moderate', is_override: false, reason: null });
    expect(rows.find((r) => r.property.id === top.property.id)?.property.status).toBe('in_progress');
    await check();
  });
  test('property detail: score freshness, sync state and a merged timeline', async () => {
    const b = await unlocked();
    const [storm] = await b.storms({});
    const [top] = await b.ranked_properties({ query: { storm_id: storm.id, limit: 1, offset: 0 } });
    const d = await b.property_detail({ property_id: top.property.id });
    expect(d.score?.uplift).toBe(top.uplift);
    expect(typeof d.score_fresh).toBe('boolean');
    expect(d.timeline.length).toBeGreaterThan(0);
    expect(await code(b.property_detail({ property_id: 'nope' }))).toBe('store.not_found');
  });
});

describe('writes and role rules', () => {
  test('a touch is appended, shows on the timeline and waits in the outbox', async () => {
    const b = await unlocked();
    const before = (await b.sync_status({})).pending;
    const [storm] = await b.storms({});
    const [r] = await b.ranked_properties({ query: { storm_id: storm.id, limit: 1, offset: 0 } });
    await b.log_touch({ property_id: r.property.id, storm_id: storm.id, channel: 'door_knock', result: 'interested', notes: 'Owner home' });
    const d = await b.property_detail({ property_id: r.property.id });
    expect(d.timeline.some((e) => e.kind === 'touch' && e.notes === 'Owner home')).toBe(true);
    expect(d.sync_state.state).toBe('pending');
    expect((await b.sync_status({})).pending).toBe(before + 1);
    expect(await code(b.log_touch({ property_id: r.property.id, storm_id: storm.id, channel: 'door_knock', result: 'talked', notes: 'x'.repeat(4001) }))).toBe('validation.too_long');
  });
  test('outcomes validate value and conversion', async () => {
    const b = await unlocked();
    const [storm] = await b.storms({});
    const [r] = await b.ranked_properties({ query: { storm_id: storm.id, limit: 1, offset: 0 } });
    expect(await code(b.log_outcome({ property_id: r.property.id, storm_id: storm.id, converted: false, contract_value_cents: 100 }))).toBe('validation.inconsistent');
    expect(await code(b.log_outcome({ property_id: r.property.id, storm_id: storm.id, converted: true, contract_value_cents: -1 }))).toBe('validation.negative');
    const o = await b.log_outcome({ property_id: r.property.id, storm_id: storm.id, converted: true, contract_value_cents: 1_450_000 });
    expect(o.contract_value).toBe(1_450_000);
  });
  test('overrides need a reason and a chief or admin', async () => {
    const field = await unlocked('field', 'sam');
    const [storm] = await field.storms({});
    const [r] = await field.ranked_properties({ query: { storm_id: storm.id, limit: 1, offset: 0 } });
    const args = { property_id: r.property.id, storm_id: storm.id, decision: 'hold' as const, mode: 'moderate' as const, is_override: true };
    expect(await code(field.decide({ ...args, reason: 'owner asked' }))).toBe('session.forbidden');
    expect((await field.decide({ ...args, decision: 'treat', is_override: false })).decision).toBe('treat');
    const chief = await unlocked('chief', 'marco');
    expect(await code(chief.decide({ ...args, reason: '  ' }))).toBe('validation.required');
    const d = await chief.decide({ ...args, reason: 'Owner is a contractor; will fix it himself' });
    expect(d).toMatchObject({ is_override: true, decision: 'hold' });
    expect((await chief.ranked_properties({ query: { storm_id: storm.id, decision: 'hold', limit: 2000, offset: 0 } })).some((x) => x.property.id === r.property.id)).toBe(true);
  });
  test('viewers cannot write; office commands are admin-only', async () => {
    const viewer = await unlocked('viewer', 'helen');
    const [storm] = await viewer.storms({});
    const [r] = await viewer.ranked_properties({ query: { storm_id: storm.id, limit: 1, offset: 0 } });
    expect(await code(viewer.log_touch({ property_id: r.property.id, storm_id: storm.id, channel: 'call', result: 'talked', notes: '' }))).toBe('session.forbidden');
    expect(await code(viewer.property_import_csv({ storm_id: storm.id, csv_text: 'x' }))).toBe('session.forbidden');
    expect((await viewer.usage({})).items.length).toBeGreaterThan(0);
    const field = await unlocked('field', 'sam');
    expect(await code(field.usage({}))).toBe('session.forbidden');
  });
});

describe('office', () => {
  test('CSV import reports line errors and imports nothing, then imports a clean file', async () => {
    const b = await unlocked('office', 'dana');
    const [storm] = await b.storms({});
    const before = await b.property_count({ query: { storm_id: storm.id, limit: 0, offset: 0 } });
    const bad = await b.property_import_csv({ storm_id: storm.id, csv_text: 'external_id,address,latitude,longitude\nN-1,1 A St,35.2,-97.4\nN-2,2 B St,135,-97.4' });
    expect(bad).toEqual({ imported: 0, errors: [{ line: 3, field: 'latitude', message: 'latitude must be between -90 and 90' }] });
    const good = await b.property_import_csv({ storm_id: storm.id, csv_text: 'external_id,address,latitude,longitude\nN-1,1 A St,35.2,-97.4\nN-2,2 B St,35.1,-97.4' });
    expect(good.imported).toBe(2);
    expect(await b.property_count({ query: { storm_id: storm.id, limit: 0, offset: 0 } })).toBe(before + 2);
  });
  test('experiment summary, setup, distribution with a drift alert', async () => {
    const b = await unlocked('office', 'dana');
    const [active, closed] = await b.storms({});
    const s = await b.experiment_summary({ storm_id: active.id });
    expect(s).not.toBeNull();
    expect(s!.lift!.ci_low).toBeLessThan(s!.lift!.lift);
    expect(s!.lift!.ci_high).toBeGreaterThan(s!.lift!.lift);
    expect(await b.experiment_summary({ storm_id: closed.id })).toBeNull();
    expect(await code(b.experiment_create({ storm_id: closed.id, treatment_share: 1 }))).toBe('validation.out_of_range');
    await b.experiment_create({ storm_id: closed.id, treatment_share: 0.8 });
    expect(await code(b.experiment_create({ storm_id: closed.id, treatment_share: 0.8 }))).toBe('experiment.exists');
    const d = await b.uplift_distribution({ storm_id: active.id });
    expect(d.scores.length).toBeGreaterThan(1000);
    expect(d.readings.map((r) => r.check)).toEqual(['uplift_mean', 'uplift_stddev', 'conversion_lift', 'volume', 'nulls']);
    expect(d.readings.some((r) => r.status === 'alert' && r.runbook.length > 0)).toBe(true);
  });
  test('storm creation validates ranges', async () => {
    const b = await unlocked('office', 'dana');
    const base = { event_id: 'E-1', name: 'May hail', started_at: NOW - 1000, ended_at: null, hail_size_in: 2, wind_mph: 60, affected_area: 'Edmond' };
    expect(await code(b.storm_create({ ...base, hail_size_in: 12 }))).toBe('validation.out_of_range');
    expect(await code(b.storm_create({ ...base, ended_at: NOW - 5000 }))).toBe('validation.inconsistent');
    expect((await b.storm_create(base)).status).toBe('planned');
  });
});

describe('sync and inbox', () => {
  test('sync runs in the background with progress, drains the outbox and refuses bad changes', async () => {
    const b = await unlocked();
    const seen: SyncStatus[] = [];
    await b.onSyncStatus((s) => seen.push(s));
    const start = await b.sync_status({});
    expect(start.pending).toBe(3);
    expect(start.refused).toBe(2);
    await b.inbox_retry({ change_id: (await b.inbox({}))[0].change.id });
    await b.sync_now({});
    await expect.poll(() => seen.at(-1)?.phase === 'idle' && seen.at(-1)?.connectivity === 'online', { timeout: 2000 }).toBe(true);
    expect(seen.some((s) => s.phase === 'pushing' && s.push.total === 4)).toBe(true);
    expect(seen.some((s) => s.phase === 'pulling')).toBe(true);
    const end = seen.at(-1)!;
    expect(end.pending).toBe(0);
    expect(end.refused).toBe(2); // the retried future-dated touch is refused again
    expect(end.last_success_at_ms).toBe(NOW);
  });
  test('edit fixes a refused change; discard drops one', async () => {
    const b = await unlocked();
    const items = await b.inbox({});
    const future = items.find((i) => i.code === 'validation.in_future')!;
    const payload = { ...(future.change.payload as Record<string, unknown>), occurred_at: NOW - 60_000 };
    expect(await code(b.inbox_edit({ change_id: future.change.id, payload: { ...payload, occurred_at: NOW + 3 * 86_400_000 } }))).toBe('validation.in_future');
    await b.inbox_edit({ change_id: future.change.id, payload });
    const orphan = items.find((i) => i.code === 'server.foreign_reference')!;
    await b.inbox_discard({ change_id: orphan.change.id });
    expect(await b.inbox({})).toEqual([]);
    expect(await code(b.inbox_discard({ change_id: orphan.change.id }))).toBe('store.not_in_inbox');
    expect((await b.sync_status({})).pending).toBe(4);
  });
  test('offline: sync reports sync.offline and keeps the work', async () => {
    const b = await unlocked('field', 'sam', { offline: true });
    const seen: SyncStatus[] = [];
    await b.onSyncStatus((s) => seen.push(s));
    await b.sync_now({});
    const last = seen.at(-1)!;
    expect(last.connectivity).toBe('offline');
    expect(last.last_error?.code).toBe('sync.offline');
    expect(last.pending).toBe(3);
  });
  test('crew day and sync health', async () => {
    const b = await unlocked('chief', 'marco');
    const s = await b.current_session({});
    const day = new Date(NOW).toISOString().slice(0, 10);
    const crew = await b.crew_day({ crew_id: s!.crew_id, day });
    const all = await b.crew_day({ crew_id: null, day });
    expect(crew.touches).toBeGreaterThan(0);
    expect(all.touches).toBeGreaterThanOrEqual(crew.touches);
    expect(crew.users.reduce((a, u) => a + u.touches, 0)).toBe(crew.touches);
    expect(await code(b.crew_day({ day: '2026-13-01' }))).toBe('store.invalid_input');
    const health = await b.crew_sync_health({});
    expect(health.from_server).toBe(true);
    // This laptop first, with what it holds; the others as the server saw them (no pending count).
    expect(health.devices[0].this_laptop).toBe(true);
    expect(health.devices[0].pending).toBeGreaterThan(0);
    const others = health.devices.slice(1);
    expect(others.length).toBeGreaterThan(0);
    expect(others.length).toBeLessThan(b.mock.data.devices.length);
    expect(others.every((d) => d.pending === null && d.refused_total !== null)).toBe(true);
  });
});
