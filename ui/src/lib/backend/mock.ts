// The in-memory mock bridge used in a browser: seeded demo data, the same commands, errors and
// role rules as the shell, an outbox and inbox, and a simulated background sync emitting statuses.

import { filterKey, normalizeSearch, pageOf } from '../filters';
import { mean, stddev } from '../histogram';
import { Rng } from '../random';
import { conversionLift } from '../stats';
import type { ArgsOf, Backend, ResultOf } from './commands';
import { parsePropertyCsv } from './mock-csv';
import { MOCK_PRESETS, PRESET_USER, type MockPreset } from './presets';
import {
  DEMO_LOCAL_USERS,
  DEMO_PASSPHRASE,
  DEMO_TENANT_NAME,
  generateDemoData,
  hashUnit,
  MODEL_VERSION,
  scoreOf,
  type DemoData,
} from './mock-data';
import type {
  Change,
  CommandError,
  Entity,
  Experiment,
  HealthReading,
  InboxItem,
  PolicyMode,
  PropertyQuery,
  PropertyStatus,
  RankedProperty,
  Role,
  Session,
  SyncStatus,
  TenantEntry,
  TimelineEntry,
  User,
  Uuid,
} from './types';
import { CHANNELS, PROPERTY_STATUSES, TOUCH_RESULTS } from './types';

export { MOCK_PRESETS, PRESET_USER, type MockPreset };

export interface MockOptions {
  preset: MockPreset;
  /** Start with no connection: sync fails with sync.offline. */
  offline?: boolean;
  /** Artificial latency of every command, ms (default 0: resolves on the next task). */
  latencyMs?: number;
  /** Properties in the active storm (default 1,200; 50,000 for `big`). */
  propertyCount?: number;
  now?: () => number;
  seed?: number;
  /** Milliseconds between simulated sync progress steps (default 150). */
  syncStepMs?: number;
}

interface LocalTenant {
  entry: TenantEntry;
  passphrases: Map<string, string>;
  /** Whether the file holds the pulled demo data (after a sign-in, or the demo file). */
  hasData: boolean;
  signedIn: boolean;
  serverUrl: string | null;
  /** Role per local user once signed in. */
  accounts: Map<string, User>;
}

/** Filter columns of the rows, by row position (see `MockBridge.filterIndex`). */
interface FilterIndex {
  storm: Int32Array;
  status: Int8Array;
  decision: Int8Array;
  /** -1: no territory. */
  territory: Int32Array;
  storms: Map<string, number>;
  territories: Map<string, number>;
}

interface OutboxEntry {
  change: Change;
  state: 'pending' | 'refused';
  code: string;
  reason: string;
  refused_at: number;
  created_at: number;
}

const MAX_LONG_TEXT = 4000;
const MAX_FUTURE_SKEW_MS = 86_400_000;
const DAY = 86_400_000;

function fail(code: string, message: string): never {
  const err: CommandError = { code, message };
  throw err;
}

function requireText(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.trim() === '') fail('validation.required', `${field} is required`);
  if (value.length > max) fail('validation.too_long', `${field} is longer than ${max} characters`);
  return value;
}

function checkUserLabel(user: string) {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(user)) {
    fail('store.invalid_user_name', `'${user.slice(0, 64)}' is not a valid user name`);
  }
}

function slugify(name: string): string {
  return name
    .toLowerCase()
    .replace(/&/g, ' and ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
}

class MockBridge {
  readonly options: Required<Omit<MockOptions, 'now'>> & { now: () => number };
  readonly data: DemoData;
  private readonly rng: Rng;
  private readonly tenants: LocalTenant[] = [];
  private session: Session | null = null;
  private current: LocalTenant | null = null;
  private readonly outbox: OutboxEntry[] = [];
  private readonly listeners = new Set<(s: SyncStatus) => void>();
  private status: SyncStatus;
  private online: boolean;
  private syncing = false;
  private hlcCounter = 0;
  private readonly deviceId: Uuid;
  private readonly experiments = new Map<Uuid, Experiment>();
  private readonly filterCache = new Map<string, RankedProperty[]>();
  private index: FilterIndex | null = null;

  constructor(options: MockOptions) {
    const now = options.now ?? (() => Date.now());
    this.options = {
      preset: options.preset,
      offline: options.offline ?? false,
      latencyMs: options.latencyMs ?? 0,
      propertyCount: options.propertyCount ?? (options.preset === 'big' ? 50_000 : 1_200),
      seed: options.seed ?? 20260414,
      syncStepMs: options.syncStepMs ?? 150,
      now,
    };
    this.rng = new Rng(this.options.seed ^ 0x5eed);
    this.online = !this.options.offline;
    this.data = generateDemoData({ seed: this.options.seed, propertyCount: this.options.propertyCount, now: now() });
    this.deviceId = this.rng.uuid();
    const demo: LocalTenant = {
      entry: {
        tenant_id: this.rng.uuid(),
        name: DEMO_TENANT_NAME,
        slug: slugify(DEMO_TENANT_NAME),
        created_at: now() - 40 * DAY,
        database: 'summit-roofing.db',
      },
      passphrases: new Map(Object.keys(DEMO_LOCAL_USERS).map((u) => [u, DEMO_PASSPHRASE])),
      hasData: true,
      signedIn: true,
      serverUrl: 'https://api.stormops.example',
      accounts: new Map(
        Object.entries(DEMO_LOCAL_USERS).map(([local, email]) => [local, this.userByEmail(email) as User]),
      ),
    };
    this.tenants.push(demo);
    const [active, closed] = this.data.storms;
    const t = now();
    this.experiments.set(active.id, {
      id: this.rng.uuid(),
      storm_id: active.id,
      treatment_share: 0.8,
      seed: 7,
      started_at: active.started_at + 3_600_000,
    });
    void closed;
    this.status = {
      connectivity: 'unknown',
      phase: 'idle',
      push: { done: 0, total: null, bytes: 0 },
      pull: { done: 0, total: null, bytes: 0 },
      eta_ms: null,
      pending: 0,
      oldest_pending_age_ms: null,
      refused: 0,
      last_success_at_ms: t - 42 * 60_000,
      last_error: null,
      consecutive_failures: 0,
    };
    this.seedOutbox();
  }

  // ---------- helpers ----------
  private now(): number {
    return this.options.now();
  }

  private userByEmail(email: string): User | undefined {
    return this.data.users.find((u) => u.email.toLowerCase() === email.toLowerCase());
  }

  private requireSession(): Session {
    if (!this.session) fail('session.locked', 'the tenant file is locked');
    return this.session;
  }

  private requireRole(allowed: Role[], action: string): Session {
    const s = this.requireSession();
    if (!s.role || !allowed.includes(s.role)) {
      fail('session.forbidden', `${s.role ?? 'a signed-out user'} cannot ${action}`);
    }
    return s;
  }

  private dataVisible(): boolean {
    return !!this.current?.hasData;
  }

  private nextHlc(): string {
    this.hlcCounter += 1;
    return `${String(this.now()).padStart(13, '0')}-${String(this.hlcCounter).padStart(5, '0')}-${this.deviceId.replace(/-/g, '').slice(0, 16)}`;
  }

  private enqueue(entity: Entity, entityId: Uuid, payload: unknown, at = this.now()) {
    this.outbox.push({
      change: { id: this.rng.uuid(), hlc: this.nextHlc(), device_id: this.deviceId, entity, entity_id: entityId, op: 'insert', payload },
      state: 'pending',
      code: '',
      reason: '',
      refused_at: 0,
      created_at: at,
    });
    this.refreshCounts();
    this.emit();
  }

  private seedOutbox() {
    const p = this.options.preset;
    if (p === 'office' || p === 'viewer') return;
    const rows = this.data.rows;
    const pick = (i: number) => rows[Math.min(rows.length - 1, i)];
    const user = this.data.users.find((u) => u.role === (p === 'chief' ? 'crew_chief' : 'field_user')) as User;
    const t = this.now();
    // A few pending touches from this morning.
    for (let i = 0; i < 3; i += 1) {
      const row = pick(10 + i);
      const touch = {
        id: this.rng.uuid(),
        property_id: row.property.id,
        storm_id: row.property.storm_id,
        user_id: user.id,
        device_id: this.deviceId,
        channel: 'door_knock',
        result: i === 0 ? 'interested' : 'no_answer',
        notes: i === 0 ? 'Hail dents on the ridge vents; owner home after 5.' : '',
        occurred_at: t - (95 - i * 20) * 60_000,
      };
      this.enqueue('journey_touch', touch.id, touch, touch.occurred_at);
    }
    // Two changes the server refused earlier.
    const future = pick(20);
    const badTouch = {
      id: this.rng.uuid(),
      property_id: future.property.id,
      storm_id: future.property.storm_id,
      user_id: user.id,
      device_id: this.deviceId,
      channel: 'call',
      result: 'scheduled',
      notes: 'Inspection booked for Thursday 9am.',
      occurred_at: t + 2 * DAY,
    };
    const removed = this.data.byId.get([...this.data.removedOnServer][0]) ?? pick(30);
    const orphan = {
      id: this.rng.uuid(),
      property_id: removed.property.id,
      storm_id: removed.property.storm_id,
      converted: true,
      contract_value: 1_180_000,
      occurred_at: t - 26 * 3_600_000,
    };
    this.outbox.push(
      {
        change: { id: this.rng.uuid(), hlc: this.nextHlc(), device_id: this.deviceId, entity: 'journey_touch', entity_id: badTouch.id, op: 'insert', payload: badTouch },
        state: 'refused',
        code: 'validation.in_future',
        reason: 'occurred_at is more than a day in the future (the laptop clock was ahead)',
        refused_at: t - 40 * 60_000,
        created_at: t - 3 * 3_600_000,
      },
      {
        change: { id: this.rng.uuid(), hlc: this.nextHlc(), device_id: this.deviceId, entity: 'outcome', entity_id: orphan.id, op: 'insert', payload: orphan },
        state: 'refused',
        code: 'server.foreign_reference',
        reason: `the office removed ${removed.property.address} from the storm`,
        refused_at: t - 40 * 60_000,
        created_at: t - 26 * 3_600_000,
      },
    );
    this.refreshCounts();
  }

  private refreshCounts() {
    const pending = this.outbox.filter((e) => e.state === 'pending');
    const refused = this.outbox.filter((e) => e.state === 'refused');
    const oldest = pending.reduce<number | null>((m, e) => (m === null || e.created_at < m ? e.created_at : m), null);
    this.status = {
      ...this.status,
      pending: pending.length,
      refused: refused.length,
      oldest_pending_age_ms: oldest === null ? null : Math.max(0, this.now() - oldest),
    };
  }

  private baseConnectivity(): SyncStatus['connectivity'] {
    if (!this.session) return 'unknown';
    if (!this.current?.signedIn) return 'needs_sign_in';
    return this.online ? 'online' : 'offline';
  }

  private emit() {
    const snapshot = structuredClone(this.status);
    for (const l of this.listeners) l(snapshot);
  }

  /** The server's verdict on a pushed change (null = accepted). */
  private serverCheck(change: Change): { code: string; reason: string } | null {
    const payload = change.payload as Record<string, unknown> | null;
    if (!payload || typeof payload !== 'object') return { code: 'server.invalid_request', reason: 'the change has no record' };
    const at = (payload.occurred_at ?? payload.decided_at) as number | undefined;
    if (typeof at === 'number' && at > this.now() + MAX_FUTURE_SKEW_MS) {
      return { code: 'validation.in_future', reason: 'occurred_at is more than a day in the future (the laptop clock was ahead)' };
    }
    const pid = payload.property_id as string | undefined;
    if (pid && this.data.removedOnServer.has(pid)) {
      return { code: 'server.foreign_reference', reason: 'the office removed this property from the storm' };
    }
    return null;
  }

  // ---------- sync simulation ----------
  private startSync() {
    if (this.syncing) return;
    const base = this.baseConnectivity();
    if (base === 'needs_sign_in' || base === 'unknown') {
      this.status = {
        ...this.status,
        connectivity: base,
        last_error: base === 'needs_sign_in' ? { code: 'sync.needs_sign_in', message: 'sign in to the server to sync', at_ms: this.now() } : null,
      };
      this.emit();
      return;
    }
    if (!this.online) {
      this.status = {
        ...this.status,
        connectivity: 'offline',
        phase: 'idle',
        last_error: { code: 'sync.offline', message: 'no connection to the server', at_ms: this.now() },
        consecutive_failures: this.status.consecutive_failures + 1,
      };
      this.emit();
      return;
    }
    this.syncing = true;
    const batch = this.outbox.filter((e) => e.state === 'pending');
    const total = batch.length;
    const pushSteps = 5;
    const pullSteps = 3;
    const pullTotal = 240;
    let step = 0;
    const started = this.now();
    this.status = { ...this.status, connectivity: 'syncing', phase: 'authenticating', push: { done: 0, total, bytes: 0 }, pull: { done: 0, total: null, bytes: 0 }, eta_ms: null, last_error: null };
    this.emit();
    const tick = () => {
      step += 1;
      if (step <= pushSteps) {
        const done = Math.round((total * step) / pushSteps);
        const elapsed = Math.max(1, this.now() - started);
        this.status = {
          ...this.status,
          phase: 'pushing',
          push: { done, total, bytes: done * 412 },
          eta_ms: done === 0 ? (pushSteps + pullSteps - step) * this.options.syncStepMs : Math.round(((total - done) / done) * elapsed) + pullSteps * this.options.syncStepMs,
        };
      } else if (step <= pushSteps + pullSteps) {
        if (step === pushSteps + 1) this.settle(batch);
        const done = Math.round((pullTotal * (step - pushSteps)) / pullSteps);
        this.status = {
          ...this.status,
          phase: 'pulling',
          pull: { done, total: null, bytes: done * 530 },
          eta_ms: (pushSteps + pullSteps - step) * this.options.syncStepMs,
        };
      } else {
        this.syncing = false;
        this.refreshCounts();
        this.status = {
          ...this.status,
          connectivity: this.online ? 'online' : 'offline',
          phase: 'idle',
          eta_ms: null,
          last_success_at_ms: this.now(),
          consecutive_failures: 0,
        };
        this.emit();
        return;
      }
      this.refreshCounts();
      this.emit();
      setTimeout(tick, this.options.syncStepMs);
    };
    setTimeout(tick, this.options.syncStepMs);
  }

  private settle(batch: OutboxEntry[]) {
    for (const entry of batch) {
      if (entry.state !== 'pending' || !this.outbox.includes(entry)) continue;
      const verdict = this.serverCheck(entry.change);
      if (verdict) {
        entry.state = 'refused';
        entry.code = verdict.code;
        entry.reason = verdict.reason;
        entry.refused_at = this.now();
      } else {
        this.outbox.splice(this.outbox.indexOf(entry), 1);
      }
    }
  }

  // ---------- queries ----------
  /**
   * The rows' filter columns as typed arrays (codes instead of strings), built on the first query after a
   * write: a filter change then scans 50,000 small integers instead of 50,000 objects. Stands in for the
   * store's indexes; `queryPredicate` is the reference it must agree with (tested).
   */
  private filterIndex(): FilterIndex {
    if (this.index) return this.index;
    const rows = this.data.rows;
    const n = rows.length;
    const storms = new Map<string, number>();
    const territories = new Map<string, number>();
    const code = (map: Map<string, number>, key: string) => {
      let c = map.get(key);
      if (c === undefined) map.set(key, (c = map.size));
      return c;
    };
    const ix: FilterIndex = {
      storm: new Int32Array(n),
      status: new Int8Array(n),
      decision: new Int8Array(n),
      territory: new Int32Array(n),
      storms,
      territories,
    };
    for (let i = 0; i < n; i += 1) {
      const r = rows[i];
      ix.storm[i] = code(storms, r.property.storm_id);
      ix.status[i] = PROPERTY_STATUSES.indexOf(r.property.status);
      ix.decision[i] = r.latest_decision === 'treat' ? 1 : r.latest_decision === 'hold' ? 2 : 0;
      const t = this.data.territoryOf.get(r.property.id);
      ix.territory[i] = t === undefined ? -1 : code(territories, t);
    }
    this.index = ix;
    return ix;
  }

  private filtered(query: PropertyQuery): RankedProperty[] {
    const key = filterKey(query);
    const cached = this.filterCache.get(key);
    if (cached) return cached;
    const rows = this.data.rows;
    const searchable = this.data.searchable;
    const ix = this.filterIndex();
    // -1: no filter on the column; -2: a value no row has (matches nothing).
    const wanted = (value: string | null | undefined, codes: (v: string) => number | undefined) => {
      if (!value) return -1;
      return codes(value) ?? -2;
    };
    const storm = wanted(query.storm_id, (v) => ix.storms.get(v));
    const territory = wanted(query.territory_id, (v) => ix.territories.get(v));
    const status = wanted(query.status, (v) => {
      const i = PROPERTY_STATUSES.indexOf(v as PropertyStatus);
      return i < 0 ? undefined : i;
    });
    const decision = wanted(query.decision, (v) => (v === 'treat' ? 1 : v === 'hold' ? 2 : undefined));
    const needle = normalizeSearch(query.search);
    const out: RankedProperty[] = [];
    for (let i = 0; i < rows.length; i += 1) {
      if (storm !== -1 && ix.storm[i] !== storm) continue;
      if (status !== -1 && ix.status[i] !== status) continue;
      if (decision !== -1 && ix.decision[i] !== decision) continue;
      if (territory !== -1 && ix.territory[i] !== territory) continue;
      if (needle && !searchable[i].includes(needle)) continue;
      out.push(rows[i]);
    }
    if (this.filterCache.size > 24) this.filterCache.clear();
    this.filterCache.set(key, out);
    return out;
  }

  private invalidate() {
    this.filterCache.clear();
    this.index = null;
  }

  private timeline(propertyId: Uuid): TimelineEntry[] {
    const entries: TimelineEntry[] = [];
    const row = this.data.byId.get(propertyId);
    const policy = this.data.decisions.filter((d) => d.property_id === propertyId);
    // The server's policy decision behind `latest_decision` (synthesised when the demo has none).
    if (row && row.latest_decision && !policy.some((d) => !d.is_override)) {
      entries.push({
        kind: 'decision',
        id: `policy-${propertyId}`,
        property_id: propertyId,
        storm_id: row.property.storm_id,
        decision: hashUnit(propertyId) < 0.2 ? 'hold' : row.latest_decision,
        mode: 'moderate',
        uplift_score: row.uplift,
        model_version: row.model_version,
        reason: hashUnit(propertyId) < 0.2 ? 'Random control holdout' : null,
        is_override: false,
        decided_by: this.data.users[0].id,
        decided_at: this.data.scoreTrainedAt + 30 * 60_000,
      });
    }
    for (const d of policy) entries.push({ kind: 'decision', ...d });
    for (const t of this.data.touches) if (t.property_id === propertyId) entries.push({ kind: 'touch', ...t });
    for (const o of this.data.outcomes) if (o.property_id === propertyId) entries.push({ kind: 'outcome', ...o });
    const rank = (e: TimelineEntry) => (e.kind === 'decision' ? 0 : e.kind === 'touch' ? 1 : 2);
    const at = (e: TimelineEntry) => (e.kind === 'decision' ? e.decided_at : e.occurred_at);
    entries.sort((a, b) => at(a) - at(b) || rank(a) - rank(b));
    return entries;
  }

  // ---------- commands ----------
  async handle<K extends keyof import('./commands').Commands>(name: K, args: ArgsOf<K>): Promise<ResultOf<K>> {
    await new Promise((r) => setTimeout(r, this.options.latencyMs));
    const fn = (this.commands as Record<string, (a: unknown) => unknown>)[name];
    if (!fn) fail('bridge.unavailable', `unknown command ${String(name)}`);
    // Results are copies, as they would be after crossing the bridge.
    const result = fn.call(this, args ?? {});
    return (result === undefined ? null : structuredClone(result)) as ResultOf<K>;
  }

  readonly commands: { [K in keyof import('./commands').Commands]: (args: ArgsOf<K>) => ResultOf<K> } = {
    list_tenants: () => this.tenants.map((t) => t.entry),

    create_tenant: ({ name, user, passphrase }) => {
      requireText('name', name, 256);
      checkUserLabel(user);
      if ((passphrase ?? '').length < 8) fail('store.weak_passphrase', 'a passphrase needs at least 8 characters');
      const slug = slugify(name);
      if (this.tenants.some((t) => t.entry.slug === slug)) fail('store.tenant_exists', `a tenant '${slug}' already exists`);
      const id = this.rng.uuid();
      const entry: TenantEntry = { tenant_id: id, name: name.trim(), slug, created_at: this.now(), database: `${id}.db` };
      this.tenants.push({ entry, passphrases: new Map([[user, passphrase]]), hasData: false, signedIn: false, serverUrl: null, accounts: new Map() });
      let key = '';
      for (let i = 0; i < 64; i += 1) key += Math.floor(this.rng.next() * 16).toString(16);
      return { tenant: entry, recovery_key: key };
    },

    unlock: ({ tenant_id, user, passphrase }) => {
      const tenant = this.tenants.find((t) => t.entry.tenant_id === tenant_id);
      if (!tenant) fail('store.tenant_not_found', 'no such tenant file on this laptop');
      const expected = tenant.passphrases.get(user);
      if (expected === undefined) fail('store.unknown_user', `no local user '${user}' in this file`);
      if (expected !== passphrase) fail('store.wrong_passphrase', 'the passphrase does not open this file');
      this.current = tenant;
      this.session = this.sessionFor(tenant, user);
      this.invalidate();
      this.refreshCounts();
      this.status = { ...this.status, connectivity: this.baseConnectivity(), phase: 'idle' };
      this.emit();
      return this.session;
    },

    lock: () => {
      this.session = null;
      this.current = null;
      this.status = { ...this.status, connectivity: 'unknown', phase: 'idle' };
      this.emit();
      return null;
    },

    current_session: () => this.session,

    sign_in: ({ server_url, tenant_slug, email, password }) => {
      const s = this.requireSession();
      const tenant = this.current as LocalTenant;
      if (!/^https?:\/\/[^\s/]+/.test(server_url ?? '')) fail('validation.invalid_format', 'server address must start with https://');
      requireText('tenant', tenant_slug, 64);
      requireText('email', email, 256);
      if (!this.online) fail('sync.offline', 'no connection to the server');
      if (!password || password === 'wrong') fail('server.invalid_credentials', 'email or password is wrong');
      const account = this.userByEmail(email) ?? this.userByEmail(DEMO_LOCAL_USERS[PRESET_USER[this.options.preset]]);
      tenant.accounts.set(s.user, account as User);
      tenant.signedIn = true;
      tenant.hasData = true;
      tenant.serverUrl = server_url;
      this.session = this.sessionFor(tenant, s.user);
      this.invalidate();
      this.refreshCounts();
      this.status = { ...this.status, connectivity: this.baseConnectivity(), last_error: null };
      this.emit();
      return this.session;
    },

    sync_status: () => {
      this.refreshCounts();
      if (!this.syncing) this.status = { ...this.status, connectivity: this.status.connectivity === 'error' ? 'error' : this.baseConnectivity() };
      return this.status;
    },

    sync_now: () => {
      this.requireSession();
      this.startSync();
      return null;
    },

    inbox: () => {
      this.requireSession();
      return this.outbox
        .filter((e) => e.state === 'refused')
        .map<InboxItem>((e) => ({ change: e.change, code: e.code, reason: e.reason, refused_at: e.refused_at }));
    },

    inbox_retry: ({ change_id }) => {
      this.requireRole(['admin', 'crew_chief', 'field_user'], 'retry changes');
      const entry = this.refusedEntry(change_id);
      entry.state = 'pending';
      this.refreshCounts();
      this.emit();
      return null;
    },

    inbox_discard: ({ change_id }) => {
      this.requireRole(['admin', 'crew_chief', 'field_user'], 'discard changes');
      const entry = this.refusedEntry(change_id);
      this.outbox.splice(this.outbox.indexOf(entry), 1);
      this.refreshCounts();
      this.emit();
      return null;
    },

    inbox_edit: ({ change_id, payload }) => {
      this.requireRole(['admin', 'crew_chief', 'field_user'], 'edit changes');
      const entry = this.refusedEntry(change_id);
      if (!payload || typeof payload !== 'object' || Array.isArray(payload)) fail('store.invalid_input', 'the edited change must be an object');
      const p = payload as Record<string, unknown>;
      if (p.id !== undefined && p.id !== entry.change.entity_id) fail('store.invalid_input', 'the edited record has a different id');
      const at = (p.occurred_at ?? p.decided_at) as unknown;
      if (at !== undefined && (typeof at !== 'number' || !Number.isFinite(at))) fail('validation.invalid_format', 'occurred_at must be a number of milliseconds');
      if (typeof at === 'number' && at > this.now() + MAX_FUTURE_SKEW_MS) fail('validation.in_future', 'occurred_at is more than a day in the future');
      if (typeof p.notes === 'string' && p.notes.length > MAX_LONG_TEXT) fail('validation.too_long', 'notes is longer than 4000 characters');
      entry.change = { ...entry.change, payload: { ...p } };
      entry.state = 'pending';
      this.refreshCounts();
      this.emit();
      return null;
    },

    storms: () => {
      this.requireSession();
      return this.dataVisible() ? this.data.storms : [];
    },

    territories: ({ storm_id }) => {
      this.requireSession();
      if (!this.dataVisible()) return [];
      return this.data.territories.filter((t) => !storm_id || t.storm_id === storm_id);
    },

    ranked_properties: ({ query }) => {
      this.requireSession();
      if (!this.dataVisible()) return [];
      return pageOf(this.filtered(query), query);
    },

    property_count: ({ query }) => {
      this.requireSession();
      if (!this.dataVisible()) return 0;
      return this.filtered(query).length;
    },

    property_detail: ({ property_id }) => {
      this.requireSession();
      const row = this.dataVisible() ? this.data.byId.get(property_id) : undefined;
      if (!row) fail('store.not_found', `no property ${property_id}`);
      const mine = this.outbox.filter((e) => (e.change.payload as { property_id?: string } | null)?.property_id === property_id);
      const refused = mine.find((e) => e.state === 'refused');
      const pending = mine.filter((e) => e.state === 'pending').length;
      const score = scoreOf(this.data, row);
      return {
        property: row.property,
        score,
        score_fresh: score ? !this.data.stale.has(property_id) : null,
        sync_state: refused
          ? { state: 'refused', code: refused.code, reason: refused.reason }
          : pending > 0
            ? { state: 'pending', changes: pending }
            : { state: 'synced' },
        timeline: this.timeline(property_id),
        // The demo's office never sets a storm's mode: the product default, as on a real laptop.
        policy: { mode: 'moderate', source: 'default', office_set_at: null, office_mode: null },
      };
    },

    log_touch: ({ property_id, storm_id, channel, result, notes }) => {
      const s = this.requireRole(['admin', 'crew_chief', 'field_user'], 'log touches');
      const row = this.data.byId.get(property_id);
      if (!row) fail('store.not_found', `no property ${property_id}`);
      if (!CHANNELS.includes(channel)) fail('validation.invalid_format', `unknown channel '${channel}'`);
      if (!TOUCH_RESULTS.includes(result)) fail('validation.invalid_format', `unknown result '${result}'`);
      if ((notes ?? '').length > MAX_LONG_TEXT) fail('validation.too_long', 'notes is longer than 4000 characters');
      const touch = {
        id: this.rng.uuid(),
        property_id,
        storm_id,
        user_id: s.user_id as string,
        device_id: this.deviceId,
        channel,
        result,
        notes: notes ?? '',
        occurred_at: this.now(),
      };
      this.data.touches.push(touch);
      if (row.property.status === 'new') {
        row.property.status = result === 'not_interested' || result === 'declined' ? 'not_interested' : 'in_progress';
        this.invalidate();
      }
      this.enqueue('journey_touch', touch.id, touch);
      return touch;
    },

    log_outcome: ({ property_id, storm_id, converted, contract_value_cents }) => {
      this.requireRole(['admin', 'crew_chief', 'field_user'], 'log outcomes');
      const row = this.data.byId.get(property_id);
      if (!row) fail('store.not_found', `no property ${property_id}`);
      if (!Number.isInteger(contract_value_cents)) fail('validation.invalid_format', 'contract_value must be whole cents');
      if (contract_value_cents < 0) fail('validation.negative', 'contract_value cannot be negative');
      if (!converted && contract_value_cents !== 0) fail('validation.inconsistent', 'an outcome that did not convert has no contract value');
      const outcome = { id: this.rng.uuid(), property_id, storm_id, converted, contract_value: contract_value_cents, occurred_at: this.now() };
      this.data.outcomes.push(outcome);
      row.property.status = converted ? 'contracted' : 'not_interested';
      this.invalidate();
      this.enqueue('outcome', outcome.id, outcome);
      return outcome;
    },

    decide: ({ property_id, storm_id, decision, mode, is_override, reason }) => {
      const s = this.requireRole(['admin', 'crew_chief', 'field_user'], 'record decisions');
      if (is_override && s.role === 'field_user') fail('session.forbidden', 'only a crew chief or an admin can override the policy');
      const row = this.data.byId.get(property_id);
      if (!row) fail('store.not_found', `no property ${property_id}`);
      if (is_override && (!reason || reason.trim() === '')) fail('validation.required', 'an override needs a reason');
      if ((reason ?? '').length > MAX_LONG_TEXT) fail('validation.too_long', 'reason is longer than 4000 characters');
      const d = {
        id: this.rng.uuid(),
        property_id,
        storm_id,
        decision,
        mode: mode as PolicyMode,
        uplift_score: row.uplift,
        model_version: row.model_version,
        reason: reason && reason.trim() !== '' ? reason.trim() : null,
        is_override,
        decided_by: s.user_id as string,
        decided_at: this.now(),
      };
      this.data.decisions.push(d);
      row.latest_decision = decision;
      this.invalidate();
      this.enqueue('policy_decision', d.id, d);
      return d;
    },

    crew_day: ({ crew_id, day }) => {
      this.requireRole(['admin', 'crew_chief', 'viewer', 'field_user'], 'see the crew day');
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day ?? '') || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) {
        fail('store.invalid_input', `'${day}' is not a YYYY-MM-DD date`);
      }
      const start = Date.parse(`${day}T00:00:00Z`);
      const end = start + DAY;
      const members = crew_id ? new Set(this.data.users.filter((u) => u.crew_id === crew_id).map((u) => u.id)) : null;
      const users = new Map<string, { user_id: string; user_name: string | null; touches: number; properties: Set<string>; by_channel: Record<string, number>; by_result: Record<string, number>; signed: number }>();
      let total = 0;
      const touchedProps = new Set<string>();
      for (const t of this.data.touches) {
        if (t.occurred_at < start || t.occurred_at >= end) continue;
        if (members && !members.has(t.user_id)) continue;
        let u = users.get(t.user_id);
        if (!u) {
          u = { user_id: t.user_id, user_name: this.data.users.find((x) => x.id === t.user_id)?.name ?? null, touches: 0, properties: new Set(), by_channel: {}, by_result: {}, signed: 0 };
          users.set(t.user_id, u);
        }
        u.touches += 1;
        u.properties.add(t.property_id);
        u.by_channel[t.channel] = (u.by_channel[t.channel] ?? 0) + 1;
        u.by_result[t.result] = (u.by_result[t.result] ?? 0) + 1;
        if (t.result === 'signed' || t.channel === 'contract_signed') u.signed += 1;
        touchedProps.add(t.property_id);
        total += 1;
      }
      let conversions = 0;
      let value = 0;
      for (const o of this.data.outcomes) {
        if (!o.converted || o.occurred_at < start || o.occurred_at >= end) continue;
        if (members && !touchedProps.has(o.property_id)) continue;
        conversions += 1;
        value += o.contract_value;
      }
      return {
        day,
        crew_id: crew_id ?? null,
        touches: total,
        users: [...users.values()]
          .sort((a, b) => (a.user_id < b.user_id ? -1 : 1))
          .map((u) => ({ ...u, properties: u.properties.size })),
        conversions,
        contract_value: value,
      };
    },

    crew_sync_health: () => {
      const s = this.requireRole(['admin', 'crew_chief'], "see the laptops' sync health");
      const now = this.now();
      this.refreshCounts();
      const mine = {
        device_id: this.deviceId,
        device_name: 'This laptop',
        user_name: this.data.users.find((u) => u.id === s.user_id)?.name ?? s.user,
        this_laptop: true,
        status: 'active' as const,
        last_sync_at_ms: this.status.last_success_at_ms,
        last_push_at_ms: null,
        last_push_changes: null,
        last_pull_at_ms: null,
        pending: this.status.pending,
        refused: this.status.refused,
        refused_total: null,
        last_refused_at_ms: null,
      };
      if (!this.online) {
        return { from_server: false, server_error: { code: 'sync.offline', message: 'no connection to the server' }, as_of_ms: now, devices: [mine] };
      }
      // As the server answers: an admin every laptop, a chief the laptops of its own crew and the crews it leads.
      const crews = new Set(this.data.crews.filter((c) => c.chief_id === s.user_id).map((c) => c.id));
      if (s.crew_id) crews.add(s.crew_id);
      const visible = (userId: string) => s.role === 'admin' || crews.has(this.data.users.find((u) => u.id === userId)?.crew_id ?? '');
      const others = this.data.devices
        .filter((d) => visible(d.user_id))
        .map((d) => ({
          device_id: d.id,
          device_name: d.name,
          user_name: this.data.users.find((u) => u.id === d.user_id)?.name ?? 'Unknown',
          this_laptop: false,
          status: d.status,
          last_sync_at_ms: Math.max(d.last_push_at_ms ?? 0, d.last_pull_at_ms ?? 0) || null,
          last_push_at_ms: d.last_push_at_ms,
          last_push_changes: d.last_push_changes,
          last_pull_at_ms: d.last_pull_at_ms,
          pending: null,
          refused: null,
          refused_total: d.refused_total,
          last_refused_at_ms: d.last_refused_at_ms,
        }));
      // This laptop is one of the server's rows when the server knows it (the signed-in user's laptop).
      const own = others.find((d) => d.status === 'active' && this.data.devices.find((x) => x.id === d.device_id)?.user_id === s.user_id);
      if (!own) return { from_server: true, server_error: null, as_of_ms: now, devices: [mine, ...others] };
      const merged = { ...own, this_laptop: true, pending: mine.pending, refused: mine.refused, last_sync_at_ms: Math.max(own.last_sync_at_ms ?? 0, mine.last_sync_at_ms ?? 0) || null };
      return { from_server: true, server_error: null, as_of_ms: now, devices: [merged, ...others.filter((d) => d !== own)] };
    },

    users: () => {
      this.requireRole(['admin', 'crew_chief', 'field_user', 'viewer'], 'list users');
      return this.data.users;
    },

    crews: () => {
      this.requireRole(['admin', 'crew_chief', 'field_user', 'viewer'], 'list crews');
      return this.data.crews;
    },

    storm_create: (args) => {
      this.requireRole(['admin'], 'create storms');
      requireText('event_id', args.event_id, 256);
      requireText('name', args.name, 256);
      if (!Number.isFinite(args.started_at)) fail('validation.required', 'started_at is required');
      if (args.started_at > this.now() + MAX_FUTURE_SKEW_MS) fail('validation.in_future', 'started_at is more than a day in the future');
      if (args.ended_at !== null && args.ended_at < args.started_at) fail('validation.inconsistent', 'a storm cannot end before it starts');
      if (!(args.hail_size_in >= 0 && args.hail_size_in <= 10)) fail('validation.out_of_range', 'hail_size_in must be between 0 and 10');
      if (!(args.wind_mph >= 0 && args.wind_mph <= 300)) fail('validation.out_of_range', 'wind_mph must be between 0 and 300');
      const storm = { id: this.rng.uuid(), ...args, status: 'planned' as const };
      this.data.storms.unshift(storm);
      return storm;
    },

    property_import_csv: ({ storm_id, csv_text }) => {
      this.requireRole(['admin'], 'import properties');
      if (!this.data.storms.some((s) => s.id === storm_id)) fail('store.not_found', 'no such storm');
      const existing = new Set(this.data.rows.filter((r) => r.property.storm_id === storm_id).map((r) => r.property.external_id));
      const { properties, errors } = parsePropertyCsv(csv_text, storm_id, () => this.rng.uuid(), existing);
      if (errors.length > 0) return { imported: 0, errors };
      for (const p of properties) {
        const row: RankedProperty = { property: p, uplift: null, p_treat: null, p_hold: null, model_version: null, latest_decision: null };
        this.data.rows.push(row);
        this.data.searchable.push(normalizeSearch(`${p.address} ${p.owner_name ?? ''} ${p.external_id}`));
        this.data.byId.set(p.id, row);
      }
      this.invalidate();
      return { imported: properties.length, errors: [] };
    },

    experiment_summary: ({ storm_id }) => {
      this.requireRole(['admin', 'viewer', 'crew_chief'], 'see experiments');
      const exp = this.experiments.get(storm_id);
      if (!exp) return null;
      const rows = this.data.rows.filter((r) => r.property.storm_id === storm_id);
      // Outcomes so far: a deterministic draw per property from its treat/hold probabilities.
      const treated = { rows: 0, conversions: 0 };
      const control = { rows: 0, conversions: 0 };
      for (const r of rows) {
        const h = hashUnit(r.property.id);
        const inControl = h < 1 - exp.treatment_share;
        const draw = hashUnit(`${r.property.id}:outcome`);
        const p = inControl ? (r.p_hold ?? 0.12) : (r.p_treat ?? 0.2);
        const g = inControl ? control : treated;
        g.rows += 1;
        if (draw < p) g.conversions += 1;
      }
      if (treated.rows === 0 || control.rows === 0) return null;
      return {
        storm_id,
        treatment_share: exp.treatment_share,
        treated,
        control,
        lift: conversionLift(treated, control),
        model: { version: MODEL_VERSION, learner: 'x_learner_gbt', trained_at: this.data.scoreTrainedAt, qini: 0.087, auuc: 0.142, uplift_at_30: 0.118 },
      };
    },

    experiment_create: ({ storm_id, treatment_share }) => {
      this.requireRole(['admin'], 'set up experiments');
      if (!this.data.storms.some((s) => s.id === storm_id)) fail('store.not_found', 'no such storm');
      if (this.experiments.has(storm_id)) fail('experiment.exists', 'this storm already has an experiment');
      if (!(treatment_share > 0 && treatment_share < 1)) fail('validation.out_of_range', 'treatment_share must be strictly between 0 and 1 so both arms exist');
      const exp = { id: this.rng.uuid(), storm_id, treatment_share, seed: Math.floor(this.rng.next() * 2 ** 31), started_at: this.now() };
      this.experiments.set(storm_id, exp);
      return exp;
    },

    uplift_distribution: ({ storm_id }) => {
      this.requireRole(['admin', 'viewer', 'crew_chief'], 'see the uplift distribution');
      const scores: number[] = [];
      let nulls = 0;
      for (const r of this.data.rows) {
        if (r.property.storm_id !== storm_id) continue;
        if (r.uplift !== null) scores.push(r.uplift);
        if (!r.property.address.trim() || !r.property.external_id.trim()) nulls += 1;
      }
      const readings: HealthReading[] = [];
      const reading = (check: HealthReading['check'], value: number, lo: number, hi: number, runbook: string): HealthReading => ({
        check,
        value,
        expected_low: lo,
        expected_high: hi,
        status: value >= lo && value <= hi ? 'ok' : 'alert',
        runbook,
      });
      const RUNBOOK_UPLIFT = 'check storm features, feature pipeline, data quality; retrain';
      if (scores.length > 0) {
        readings.push(reading('uplift_mean', mean(scores), 0.1, 0.3, RUNBOOK_UPLIFT));
        readings.push(reading('uplift_stddev', stddev(scores), 0.02, 0.25, RUNBOOK_UPLIFT));
      }
      const summary = this.commands.experiment_summary({ storm_id });
      if (summary?.lift) readings.push(reading('conversion_lift', summary.lift.lift, 0.05, 1, 'verify policy compliance, control contamination, assignments; analyse by segment'));
      const stormTouches = this.data.touches.filter((t) => t.storm_id === storm_id);
      const recent = stormTouches.filter((t) => t.occurred_at >= this.now() - DAY).length;
      readings.push(reading('volume', stormTouches.length === 0 ? 0 : recent / stormTouches.length, 0.1, 1, 'check sync backlog, devices, upstream imports, error logs'));
      readings.push(reading('nulls', nulls, 0, 0, 'find the writer, fix validation'));
      return { scores, readings };
    },

    usage: () => {
      this.requireRole(['admin', 'viewer'], 'see usage');
      const t = new Date(this.now());
      return {
        plan: 'standard',
        period_start_ms: Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1),
        items: [
          { kind: 'events_synced', used: 912_400, soft_limit: 1_000_000, hard_limit: 1_200_000 },
          { kind: 'requests', used: 860, soft_limit: 1_200, hard_limit: 1_500 },
          { kind: 'storage_bytes', used: 2_254_857_830, soft_limit: 10 * 1024 ** 3, hard_limit: 12 * 1024 ** 3 },
          { kind: 'model_runs', used: 14, soft_limit: 120, hard_limit: 200 },
          { kind: 'users', used: this.data.users.length, soft_limit: 25, hard_limit: 25 },
          { kind: 'devices', used: this.data.devices.filter((d) => d.status === 'active').length, soft_limit: 50, hard_limit: 50 },
        ],
        recommendation:
          'Synced events are at 91% of the standard plan this month. At this pace they pass the soft limit in about 3 days; the enterprise plan allows 50,000,000 a month.',
      };
    },
  };

  private refusedEntry(changeId: Uuid): OutboxEntry {
    const entry = this.outbox.find((e) => e.change.id === changeId && e.state === 'refused');
    if (!entry) fail('store.not_in_inbox', 'that change is not in the inbox');
    return entry;
  }

  private sessionFor(tenant: LocalTenant, user: string): Session {
    const account = tenant.signedIn ? tenant.accounts.get(user) : undefined;
    return {
      tenant_id: tenant.entry.tenant_id,
      tenant_name: tenant.entry.name,
      user,
      role: account?.role ?? null,
      signed_in: tenant.signedIn,
      server_url: tenant.serverUrl,
      user_id: account?.id ?? null,
      crew_id: account?.crew_id ?? null,
    };
  }

  subscribe(listener: (s: SyncStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Test and demo hook: go on- or offline. */
  setOnline(online: boolean) {
    this.online = online;
    if (!this.syncing && this.session) {
      this.status = { ...this.status, connectivity: this.baseConnectivity(), last_error: online ? null : this.status.last_error };
      this.emit();
    }
  }
}

export interface MockBackend extends Backend {
  /** Test and demo hooks (not part of the bridge). */
  readonly mock: { setOnline(online: boolean): void; data: DemoData };
}

export function createMockBackend(options: MockOptions): MockBackend {
  const bridge = new MockBridge(options);
  const names = Object.keys(bridge.commands) as (keyof typeof bridge.commands)[];
  const methods = Object.fromEntries(names.map((n) => [n, (args: unknown) => bridge.handle(n, args as never)]));
  return {
    ...(methods as unknown as Omit<Backend, 'kind' | 'onSyncStatus'>),
    kind: 'mock',
    onSyncStatus: async (listener) => bridge.subscribe(listener),
    mock: { setOnline: (online) => bridge.setOnline(online), data: bridge.data },
  };
}
