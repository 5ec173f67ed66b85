// Deterministic seeded demo data for the mock bridge: a roofing company, its crews, two storms,
// properties with uplift scores (up to 50,000), territories, and a day of journeys.

import { compareRanked, normalizeSearch } from '../filters';
import { Rng } from '../random';
import type {
  Crew,
  JourneyTouch,
  Outcome,
  PolicyDecision,
  PropertyStatus,
  RankedProperty,
  RoofMaterial,
  Role,
  Storm,
  Territory,
  TouchResult,
  Channel,
  UpliftScore,
  User,
  Uuid,
} from './types';

export const DEMO_TENANT_NAME = 'Summit Roofing & Restoration';
export { DEMO_PASSPHRASE } from './presets';
export const MODEL_VERSION = 'm-2026-04-15.3';

/** Local users of the demo tenant file and the server account each maps to. */
export const DEMO_LOCAL_USERS: Record<string, string> = {
  sam: 'sam.patel@summitroofing.example',
  marco: 'marco.reyes@summitroofing.example',
  dana: 'dana.whitfield@summitroofing.example',
  helen: 'helen.park@summitroofing.example',
};

/** A laptop as the server saw it (`GET /v1/admin/devices`): it never knows what a laptop still holds. */
export interface DemoDevice {
  id: Uuid;
  user_id: Uuid;
  name: string;
  last_push_at_ms: number | null;
  last_push_changes: number | null;
  last_pull_at_ms: number | null;
  refused_total: number;
  last_refused_at_ms: number | null;
  status: 'active' | 'revoked';
}

export interface DemoData {
  crews: Crew[];
  users: User[];
  devices: DemoDevice[];
  storms: Storm[];
  territories: Territory[];
  /** Every property row, ranked (uplift descending, unscored last). */
  rows: RankedProperty[];
  /** Normalised address + owner + external id, parallel to `rows`, for instant search. */
  searchable: string[];
  byId: Map<Uuid, RankedProperty>;
  territoryOf: Map<Uuid, Uuid>;
  scoreTrainedAt: number;
  /** Properties whose score predates the latest data (stale badge). */
  stale: Set<Uuid>;
  touches: JourneyTouch[];
  outcomes: Outcome[];
  decisions: PolicyDecision[];
  /** Property ids the office removed on the server (changes about them are refused). */
  removedOnServer: Set<Uuid>;
}

const STREETS = [
  'Cedar Ridge',
  'Post Oak',
  'Brookhaven',
  'Lindsey',
  'Classen',
  'Alameda',
  'Robinson',
  'Berry',
  'Chautauqua',
  'Imhoff',
  'Rambling Oaks',
  'Summit Lakes',
  'Hollywood',
  'Boyd',
  'Jenkins',
  'Pickard',
  'Stubbeman',
  'Wilshire',
  'Meadowbrook',
  'Cherry Stone',
  'Sequoyah',
  'Redbud',
  'Pebble Creek',
  'Timberdell',
];
const SUFFIXES = ['St', 'Ave', 'Dr', 'Ln', 'Ct', 'Blvd', 'Way', 'Pl', 'Cir'];
const CITIES = ['Norman, OK', 'Moore, OK', 'Noble, OK', 'Slaughterville, OK'];
const FIRST = ['Alex', 'Maria', 'James', 'Linda', 'Robert', 'Patricia', 'Michael', 'Jennifer', 'David', 'Susan', 'Daniel', 'Karen', 'Thomas', 'Nancy', 'Chris', 'Angela', 'Kevin', 'Laura', 'Brian', 'Emily'];
const LAST = ['Nguyen', 'Johnson', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Thomas', 'Moore', 'Jackson', 'Martin', 'Thompson', 'White', 'Harris', 'Clark', 'Lewis'];
const MATERIALS: RoofMaterial[] = ['asphalt_shingle', 'asphalt_shingle', 'asphalt_shingle', 'asphalt_shingle', 'metal', 'tile', 'wood_shake', 'slate', 'flat', 'other'];
const STATUS_WEIGHTS: [PropertyStatus, number][] = [
  ['new', 0.72],
  ['in_progress', 0.12],
  ['inspected', 0.06],
  ['contracted', 0.04],
  ['not_interested', 0.05],
  ['do_not_contact', 0.01],
];
const TERRITORY_NAMES = ['North Cedar', 'Lake Thunderbird', 'Downtown Norman', 'Moore East', 'Brookhaven', 'Summit Lakes'];

const DAY = 86_400_000;

function weighted<T>(rng: Rng, table: [T, number][]): T {
  let r = rng.next();
  for (const [value, w] of table) {
    if (r < w) return value;
    r -= w;
  }
  return table[table.length - 1][0];
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

export interface GenerateOptions {
  seed: number;
  /** Properties of the active storm. */
  propertyCount: number;
  now: number;
}

export function generateDemoData({ seed, propertyCount, now }: GenerateOptions): DemoData {
  const rng = new Rng(seed);
  const crewA: Crew = { id: rng.uuid(), name: 'Crew Reyes', chief_id: null };
  const crewB: Crew = { id: rng.uuid(), name: 'Crew Okafor', chief_id: null };
  const mk = (name: string, email: string, role: Role, crew: Crew | null): User => ({
    id: rng.uuid(),
    email,
    name,
    role,
    crew_id: crew ? crew.id : null,
  });
  const users: User[] = [
    mk('Dana Whitfield', 'dana.whitfield@summitroofing.example', 'admin', null),
    mk('Marco Reyes', 'marco.reyes@summitroofing.example', 'crew_chief', crewA),
    mk('Ngozi Okafor', 'ngozi.okafor@summitroofing.example', 'crew_chief', crewB),
    mk('Sam Patel', 'sam.patel@summitroofing.example', 'field_user', crewA),
    mk('Jordan Lee', 'jordan.lee@summitroofing.example', 'field_user', crewA),
    mk('Ava Brooks', 'ava.brooks@summitroofing.example', 'field_user', crewA),
    mk('Luis Ortega', 'luis.ortega@summitroofing.example', 'field_user', crewB),
    mk('Priya Shah', 'priya.shah@summitroofing.example', 'field_user', crewB),
    mk('Helen Park', 'helen.park@summitroofing.example', 'viewer', null),
  ];
  crewA.chief_id = users[1].id;
  crewB.chief_id = users[2].id;

  const devices: DemoDevice[] = users
    .filter((u) => u.role !== 'viewer')
    .map((u, i) => ({
      id: rng.uuid(),
      user_id: u.id,
      name: u.role === 'admin' ? 'Office desktop' : `Truck ${i + 1} laptop`,
      last_push_at_ms: now - [4, 90, 12, 35, 260, 8, 1440, 55][i % 8] * 60_000,
      last_push_changes: [12, 3, 40, 14, 1, 2, 87, 9][i % 8],
      last_pull_at_ms: now - [3, 88, 11, 30, 255, 7, 1430, 50][i % 8] * 60_000,
      refused_total: [0, 0, 0, 2, 0, 0, 1, 0][i % 8],
      last_refused_at_ms: [null, null, null, now - 50 * 60_000, null, null, now - 1500 * 60_000, null][i % 8],
      status: 'active' as const,
    }));
  devices.push({
    id: rng.uuid(),
    user_id: users[4].id,
    name: 'Old truck laptop (lost)',
    last_push_at_ms: now - 9 * DAY,
    last_push_changes: 6,
    last_pull_at_ms: now - 9 * DAY,
    refused_total: 0,
    last_refused_at_ms: null,
    status: 'revoked',
  });

  const active: Storm = {
    id: rng.uuid(),
    event_id: 'NWS-OUN-2026-0414',
    name: 'April 14 hail — Norman',
    started_at: now - 6 * DAY,
    ended_at: now - 6 * DAY + 5 * 3_600_000,
    hail_size_in: 2.75,
    wind_mph: 68,
    affected_area: 'Norman and east Moore, OK',
    status: 'active',
  };
  const closed: Storm = {
    id: rng.uuid(),
    event_id: 'NWS-OUN-2026-0328',
    name: 'March 28 wind — Moore',
    started_at: now - 24 * DAY,
    ended_at: now - 24 * DAY + 3 * 3_600_000,
    hail_size_in: 1.0,
    wind_mph: 84,
    affected_area: 'Moore, OK',
    status: 'closed',
  };
  const storms = [active, closed];

  const territories: Territory[] = TERRITORY_NAMES.map((name, i) => ({
    id: rng.uuid(),
    storm_id: active.id,
    name,
    crew_id: i % 2 === 0 ? crewA.id : crewB.id,
  }));
  territories.push(
    { id: rng.uuid(), storm_id: closed.id, name: 'Moore West', crew_id: crewA.id },
    { id: rng.uuid(), storm_id: closed.id, name: 'Moore Central', crew_id: crewB.id },
  );

  const scoreTrainedAt = now - 14 * 3_600_000;
  const rows: RankedProperty[] = [];
  const territoryOf = new Map<Uuid, Uuid>();
  const stale = new Set<Uuid>();

  const makeProperties = (storm: Storm, count: number, centre: [number, number], spread: number, terrs: Territory[], idPrefix: string) => {
    for (let i = 0; i < count; i += 1) {
      const lat = centre[0] + rng.normal(0, spread);
      const lon = centre[1] + rng.normal(0, spread * 1.3);
      const distance = Math.sqrt(((lat - centre[0]) * 111) ** 2 + ((lon - centre[1]) * 91) ** 2);
      const hail = clamp(storm.hail_size_in - distance * 0.12 + rng.normal(0, 0.25), 0.25, storm.hail_size_in);
      const roofAge = clamp(Math.round(rng.normal(14, 7)), 1, 45);
      const scored = rng.next() < 0.93;
      const pHold = clamp(0.04 + roofAge * 0.004 + rng.normal(0, 0.03), 0.01, 0.6);
      const upliftRaw = clamp(rng.normal(0.08 + hail * 0.045 + (roofAge > 15 ? 0.05 : 0) - distance * 0.004, 0.09), -0.25, 0.75);
      const pTreat = clamp(pHold + upliftRaw, 0, 1);
      const uplift = scored ? Math.round((pTreat - pHold) * 10_000) / 10_000 : null;
      const first = rng.pick(FIRST);
      const last = rng.pick(LAST);
      const id = rng.uuid();
      const street = `${rng.int(100, 9899)} ${rng.pick(STREETS)} ${rng.pick(SUFFIXES)}`;
      const address = `${street}, ${rng.pick(CITIES)}`;
      const withPhone = rng.next() < 0.7;
      const withEmail = rng.next() < 0.5;
      const row: RankedProperty = {
        property: {
          id,
          storm_id: storm.id,
          external_id: `${idPrefix}-${String(i + 1).padStart(6, '0')}`,
          address,
          latitude: Math.round(lat * 1e6) / 1e6,
          longitude: Math.round(lon * 1e6) / 1e6,
          roof_age_years: roofAge,
          roof_material: rng.pick(MATERIALS),
          square_feet: Math.round(clamp(rng.normal(2100, 600), 700, 6500) / 10) * 10,
          home_value: Math.round(clamp(rng.normal(265_000, 90_000), 70_000, 1_200_000) / 500) * 500 * 100,
          hail_size_in: Math.round(hail * 100) / 100,
          distance_to_core_km: Math.round(distance * 100) / 100,
          prior_claims: rng.next() < 0.8 ? 0 : rng.int(1, 3),
          owner_name: `${first} ${last}`,
          owner_phone: withPhone ? `(405) 555-${String(rng.int(0, 9999)).padStart(4, '0')}` : null,
          owner_email: withEmail ? `${first}.${last}@mail.example`.toLowerCase() : null,
          status: weighted(rng, STATUS_WEIGHTS),
        },
        uplift,
        p_treat: scored ? Math.round(pTreat * 10_000) / 10_000 : null,
        p_hold: scored ? Math.round(pHold * 10_000) / 10_000 : null,
        model_version: scored ? MODEL_VERSION : null,
        latest_decision: null,
      };
      rows.push(row);
      // Territories split the area into a grid around the centre.
      const col = lon < centre[1] - spread * 0.4 ? 0 : lon < centre[1] + spread * 0.4 ? 1 : 2;
      const rowIdx = lat >= centre[0] ? 0 : 1;
      const t = terrs[(rowIdx * 3 + col) % terrs.length];
      territoryOf.set(id, t.id);
      if (scored && rng.next() < 0.14) stale.add(id);
    }
  };
  makeProperties(active, propertyCount, [35.2226, -97.4395], 0.05, territories.slice(0, 6), 'NRM');
  makeProperties(closed, Math.max(50, Math.round(propertyCount * 0.08)), [35.3395, -97.4867], 0.03, territories.slice(6), 'MOR');

  // The policy (moderate): treat the scored top of each storm down to uplift 0.15, hold the rest; a
  // fifth of the storm is the random control holdout and gets "hold" whatever the score.
  for (const row of rows) {
    if (row.uplift === null) continue;
    const draw = hashUnit(row.property.id);
    row.latest_decision = draw < 0.2 ? 'hold' : row.uplift >= 0.15 ? 'treat' : 'hold';
  }
  rows.sort(compareRanked);
  const searchable = rows.map((r) =>
    normalizeSearch(`${r.property.address} ${r.property.owner_name ?? ''} ${r.property.external_id}`),
  );
  const byId = new Map(rows.map((r) => [r.property.id, r]));

  // A working day: touches by the field crews on today's best-ranked properties, and older history.
  const touches: JourneyTouch[] = [];
  const outcomes: Outcome[] = [];
  const decisions: PolicyDecision[] = [];
  const fieldUsers = users.filter((u) => u.role === 'field_user' || u.role === 'crew_chief');
  const activeRows = rows.filter((r) => r.property.storm_id === active.id);
  const today = Math.floor(now / DAY) * DAY;
  const channels: [Channel, number][] = [
    ['door_knock', 0.55],
    ['call', 0.18],
    ['text', 0.1],
    ['inspection', 0.09],
    ['estimate', 0.05],
    ['contract_signed', 0.03],
  ];
  const results: Record<Channel, [TouchResult, number][]> = {
    door_knock: [
      ['no_answer', 0.45],
      ['left_info', 0.2],
      ['talked', 0.15],
      ['interested', 0.12],
      ['not_interested', 0.08],
    ],
    call: [
      ['no_answer', 0.4],
      ['talked', 0.3],
      ['scheduled', 0.2],
      ['declined', 0.1],
    ],
    text: [
      ['no_answer', 0.6],
      ['interested', 0.25],
      ['scheduled', 0.15],
    ],
    mailer: [['left_info', 1]],
    inspection: [
      ['completed', 0.8],
      ['scheduled', 0.2],
    ],
    estimate: [
      ['completed', 0.7],
      ['declined', 0.3],
    ],
    contract_signed: [['signed', 1]],
  };
  const deviceOf = (u: User) => devices.find((d) => d.user_id === u.id)?.id ?? rng.uuid();
  const sinceMidnight = Math.max(3_600_000, now - today);
  const addTouch = (row: RankedProperty, user: User, at: number) => {
    const channel = weighted(rng, channels);
    const result = weighted(rng, results[channel]);
    touches.push({
      id: rng.uuid(),
      property_id: row.property.id,
      storm_id: row.property.storm_id,
      user_id: user.id,
      device_id: deviceOf(user),
      channel,
      result,
      notes: result === 'interested' ? 'Owner saw granule loss in the gutters; wants an inspection.' : result === 'no_answer' ? '' : 'Spoke briefly at the door.',
      occurred_at: at,
    });
    if (result === 'signed') {
      outcomes.push({
        id: rng.uuid(),
        property_id: row.property.id,
        storm_id: row.property.storm_id,
        converted: true,
        contract_value: Math.round(clamp(rng.normal(14_500, 4_000), 6_000, 42_000)) * 100,
        occurred_at: at + 60_000,
      });
    }
  };
  const workToday = Math.min(activeRows.length, 180);
  for (let i = 0; i < workToday; i += 1) {
    const user = rng.pick(fieldUsers);
    addTouch(activeRows[i], user, today + Math.floor(rng.next() * sinceMidnight));
  }
  // Earlier days of the storm: more volume than today, so the recent-volume check has history. Each is
  // more than a day before `now` (not before midnight), so the check's last-24-hours window holds only
  // today's work whatever the time of day.
  const history = activeRows.length > 0 ? 2_400 : 0;
  for (let i = 0; i < history; i += 1) {
    const row = activeRows[Math.floor(rng.next() * Math.min(activeRows.length, 4_000))];
    const user = fieldUsers[i % fieldUsers.length];
    const daysBack = 1 + Math.floor(rng.next() * 5);
    addTouch(row, user, now - daysBack * DAY - 60_000 - Math.floor(rng.next() * DAY * 0.5));
  }
  touches.sort((a, b) => a.occurred_at - b.occurred_at);

  const removedOnServer = new Set<Uuid>();
  const last = activeRows[activeRows.length - 1];
  if (last) removedOnServer.add(last.property.id);

  return {
    crews: [crewA, crewB],
    users,
    devices,
    storms,
    territories,
    rows,
    searchable,
    byId,
    territoryOf,
    scoreTrainedAt,
    stale,
    touches,
    outcomes,
    decisions,
    removedOnServer,
  };
}

/** A stable number in [0, 1) from an id (for per-property draws that do not depend on order). */
export function hashUnit(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) / 4294967296;
}

export function scoreOf(data: DemoData, row: RankedProperty): UpliftScore | null {
  if (row.uplift === null || row.p_treat === null || row.p_hold === null) return null;
  const isStale = data.stale.has(row.property.id);
  return {
    property_id: row.property.id,
    storm_id: row.property.storm_id,
    uplift: row.uplift,
    p_treat: row.p_treat,
    p_hold: row.p_hold,
    model_version: isStale ? 'm-2026-04-11.1' : (row.model_version ?? MODEL_VERSION),
    trained_at: isStale ? data.scoreTrainedAt - 4 * DAY : data.scoreTrainedAt,
    data_watermark: isStale ? 18_204 : 41_977,
  };
}
