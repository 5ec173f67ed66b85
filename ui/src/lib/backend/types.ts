// Hand-written TypeScript mirrors of the Rust serde shapes the bridge carries (snake_case JSON).
// Sources: crates/domain (records.rs, enums.rs), crates/local-store (queries.rs, outbox.rs, data_dir.rs),
// crates/desktop-core (status.rs), crates/uplift (experiment.rs, health.rs), crates/sync-protocol (changes.rs).

/** A UUID in its hyphenated text form. */
export type Uuid = string;
/** Unix milliseconds (domain::Timestamp, serde transparent). */
export type Millis = number;
/** Integer cents (domain::Cents, serde transparent). */
export type Cents = number;

// ---- enums.rs vocabularies (stable text forms) ----
export type Role = 'admin' | 'crew_chief' | 'field_user' | 'viewer';
export type PlanTier = 'trial' | 'standard' | 'enterprise';
export type TenantStatus = 'active' | 'suspended' | 'deleted';
export type DeviceStatus = 'active' | 'revoked';
export type StormStatus = 'planned' | 'active' | 'closed';
export type PropertyStatus =
  | 'new'
  | 'in_progress'
  | 'inspected'
  | 'contracted'
  | 'not_interested'
  | 'do_not_contact';
export type RoofMaterial =
  | 'asphalt_shingle'
  | 'metal'
  | 'tile'
  | 'wood_shake'
  | 'slate'
  | 'flat'
  | 'other';
export type Channel =
  | 'door_knock'
  | 'call'
  | 'text'
  | 'mailer'
  | 'inspection'
  | 'estimate'
  | 'contract_signed';
export type TouchResult =
  | 'no_answer'
  | 'left_info'
  | 'talked'
  | 'interested'
  | 'not_interested'
  | 'scheduled'
  | 'completed'
  | 'signed'
  | 'declined';
export type Decision = 'treat' | 'hold';
export type PolicyMode = 'conservative' | 'moderate' | 'aggressive';
export type Arm = 'treatment' | 'control';
export type UsageKind = 'events_synced' | 'model_runs' | 'storage_bytes' | 'requests';
export type QualityStatus = 'ok' | 'warn' | 'alert';

export const ROLES: readonly Role[] = ['admin', 'crew_chief', 'field_user', 'viewer'];
export const PROPERTY_STATUSES: readonly PropertyStatus[] = [
  'new',
  'in_progress',
  'inspected',
  'contracted',
  'not_interested',
  'do_not_contact',
];
export const ROOF_MATERIALS: readonly RoofMaterial[] = [
  'asphalt_shingle',
  'metal',
  'tile',
  'wood_shake',
  'slate',
  'flat',
  'other',
];
export const CHANNELS: readonly Channel[] = [
  'door_knock',
  'call',
  'text',
  'mailer',
  'inspection',
  'estimate',
  'contract_signed',
];
export const TOUCH_RESULTS: readonly TouchResult[] = [
  'no_answer',
  'left_info',
  'talked',
  'interested',
  'not_interested',
  'scheduled',
  'completed',
  'signed',
  'declined',
];
export const POLICY_MODES: readonly PolicyMode[] = ['conservative', 'moderate', 'aggressive'];

// ---- records.rs ----
export interface Tenant {
  id: Uuid;
  name: string;
  slug: string;
  plan: PlanTier;
  status: TenantStatus;
  created_at: Millis;
}

export interface User {
  id: Uuid;
  email: string;
  name: string;
  role: Role;
  crew_id: Uuid | null;
}

export interface Crew {
  id: Uuid;
  name: string;
  chief_id: Uuid | null;
}

export interface Storm {
  id: Uuid;
  event_id: string;
  name: string;
  started_at: Millis;
  ended_at: Millis | null;
  /** Largest hail diameter, inches. */
  hail_size_in: number;
  /** Peak wind speed, mph. */
  wind_mph: number;
  affected_area: string;
  status: StormStatus;
}

export interface Property {
  id: Uuid;
  storm_id: Uuid;
  external_id: string;
  address: string;
  latitude: number;
  longitude: number;
  roof_age_years: number | null;
  roof_material: RoofMaterial | null;
  square_feet: number | null;
  home_value: Cents | null;
  hail_size_in: number | null;
  distance_to_core_km: number | null;
  prior_claims: number;
  owner_name: string | null;
  owner_phone: string | null;
  owner_email: string | null;
  status: PropertyStatus;
}

export interface Territory {
  id: Uuid;
  storm_id: Uuid;
  name: string;
  crew_id: Uuid | null;
}

export interface Experiment {
  id: Uuid;
  storm_id: Uuid;
  treatment_share: number;
  seed: number;
  started_at: Millis;
}

export interface JourneyTouch {
  id: Uuid;
  property_id: Uuid;
  storm_id: Uuid;
  user_id: Uuid;
  device_id: Uuid;
  channel: Channel;
  result: TouchResult;
  notes: string;
  occurred_at: Millis;
}

export interface Outcome {
  id: Uuid;
  property_id: Uuid;
  storm_id: Uuid;
  converted: boolean;
  contract_value: Cents;
  occurred_at: Millis;
}

export interface PolicyDecision {
  id: Uuid;
  property_id: Uuid;
  storm_id: Uuid;
  decision: Decision;
  mode: PolicyMode;
  uplift_score: number | null;
  model_version: string | null;
  reason: string | null;
  is_override: boolean;
  decided_by: Uuid;
  decided_at: Millis;
}

export interface UpliftScore {
  property_id: Uuid;
  storm_id: Uuid;
  uplift: number;
  p_treat: number;
  p_hold: number;
  model_version: string;
  trained_at: Millis;
  data_watermark: number;
}

// ---- local-store data_dir.rs ----
export interface TenantEntry {
  tenant_id: Uuid;
  name: string;
  slug: string;
  created_at: Millis;
  database: string;
  /** The sync server this file belongs to, once signed in (absent before). */
  server_url?: string | null;
}

// ---- local-store queries.rs ----
/** Filters of the ranked list; every filter optional; limit 0 means the default of 50. */
export interface PropertyQuery {
  storm_id?: Uuid | null;
  territory_id?: Uuid | null;
  status?: PropertyStatus | null;
  decision?: Decision | null;
  /** Case-insensitive substring of the address. */
  search?: string | null;
  limit: number;
  offset: number;
}

export interface RankedProperty {
  property: Property;
  uplift: number | null;
  p_treat: number | null;
  p_hold: number | null;
  model_version: string | null;
  latest_decision: Decision | null;
}

/** serde `tag = "kind"`: the record's fields sit beside `kind`. */
export type TimelineEntry =
  | ({ kind: 'touch' } & JourneyTouch)
  | ({ kind: 'outcome' } & Outcome)
  | ({ kind: 'decision' } & PolicyDecision);

export interface UserDay {
  user_id: string;
  user_name: string | null;
  touches: number;
  properties: number;
  by_channel: Record<string, number>;
  by_result: Record<string, number>;
  signed: number;
}

export interface CrewDaySummary {
  /** YYYY-MM-DD, UTC. */
  day: string;
  crew_id: Uuid | null;
  touches: number;
  users: UserDay[];
  conversions: number;
  contract_value: Cents;
}

export interface RecordCounts {
  storms: number;
  properties: number;
  scored_properties: number;
  touches: number;
  outcomes: number;
  decisions: number;
}

// ---- sync-protocol changes.rs + local-store outbox.rs ----
export type Entity =
  | 'storm'
  | 'property'
  | 'territory'
  | 'assignment'
  | 'experiment'
  | 'arm_assignment'
  | 'journey_touch'
  | 'outcome'
  | 'policy_decision'
  | 'uplift_score'
  | 'crew'
  | 'user';
export type ChangeOp = 'insert' | 'update' | 'delete';

export interface Change {
  id: Uuid;
  /** Hybrid logical clock text form `wall-counter-node`. */
  hlc: string;
  device_id: Uuid;
  entity: Entity;
  entity_id: Uuid;
  op: ChangeOp;
  payload: unknown;
}

export interface InboxItem {
  change: Change;
  code: string;
  reason: string;
  refused_at: Millis;
}

/** serde `tag = "state"`. */
export type RecordSyncState =
  | { state: 'synced' }
  | { state: 'pending'; changes: number }
  | { state: 'refused'; code: string; reason: string };

export interface PendingCounts {
  pending: number;
  refused: number;
  oldest_pending_at: Millis | null;
  oldest_pending_age_ms: number | null;
}

// ---- desktop-core status.rs ----
export type Connectivity =
  | 'unknown'
  | 'online'
  | 'offline'
  | 'syncing'
  | 'error'
  | 'needs_sign_in'
  | 'revoked';
export type Phase = 'idle' | 'authenticating' | 'pushing' | 'pulling';

export interface Progress {
  done: number;
  total: number | null;
  bytes: number;
}

export interface StatusError {
  code: string;
  message: string;
  at_ms: Millis;
}

export interface SyncStatus {
  connectivity: Connectivity;
  phase: Phase;
  push: Progress;
  pull: Progress;
  eta_ms: number | null;
  pending: number;
  oldest_pending_age_ms: number | null;
  refused: number;
  last_success_at_ms: Millis | null;
  last_error: StatusError | null;
  consecutive_failures: number;
}

// ---- uplift experiment.rs + health.rs ----
export interface GroupOutcomes {
  rows: number;
  conversions: number;
}

export interface LiftEstimate {
  treated_rate: number;
  control_rate: number;
  lift: number;
  ci_low: number;
  ci_high: number;
  z: number;
  p_value: number;
}

export type HealthCheck = 'uplift_mean' | 'uplift_stddev' | 'conversion_lift' | 'volume' | 'nulls';

export interface HealthReading {
  check: HealthCheck;
  value: number;
  expected_low: number;
  expected_high: number;
  status: QualityStatus;
  runbook: string;
}

// ---- shapes defined by the bridge itself (the shell assembles them) ----
export interface Session {
  tenant_id: Uuid;
  tenant_name: string;
  /** The local user whose passphrase unlocked the file. */
  user: string;
  /** Null until signed in to the server once (the role comes from the server). */
  role: Role | null;
  signed_in: boolean;
  server_url: string | null;
  user_id: Uuid | null;
  crew_id: Uuid | null;
}

export interface CreatedTenant {
  tenant: TenantEntry;
  /** 64 hex characters; shown once. */
  recovery_key: string;
}

export interface PropertyDetail {
  property: Property;
  score: UpliftScore | null;
  /** Whether the score was computed from the latest data the server has (null: unknown/unscored). */
  score_fresh: boolean | null;
  sync_state: RecordSyncState;
  timeline: TimelineEntry[];
}

export interface DeviceSyncHealth {
  device_id: Uuid;
  user_name: string;
  last_sync_at_ms: Millis | null;
  pending: number;
  refused: number;
  status: DeviceStatus;
}

export interface ModelSummary {
  version: string;
  learner: string;
  trained_at: Millis;
  qini: number;
  auuc: number;
  uplift_at_30: number;
}

export interface ExperimentSummary {
  storm_id: Uuid;
  treatment_share: number;
  treated: GroupOutcomes;
  control: GroupOutcomes;
  lift: LiftEstimate;
  model: ModelSummary | null;
}

export interface UpliftDistribution {
  scores: number[];
  readings: HealthReading[];
}

export interface UsageItem {
  kind: UsageKind | 'users' | 'devices';
  used: number;
  soft_limit: number;
  hard_limit: number;
}

export interface UsageReport {
  plan: PlanTier;
  period_start_ms: Millis;
  items: UsageItem[];
  recommendation: string | null;
}

export interface NewStorm {
  event_id: string;
  name: string;
  started_at: Millis;
  ended_at: Millis | null;
  hail_size_in: number;
  wind_mph: number;
  affected_area: string;
}

export interface ImportLineError {
  /** 1-based line of the CSV text (the header is line 1). */
  line: number;
  field: string;
  message: string;
}

export interface ImportReport {
  imported: number;
  errors: ImportLineError[];
}

/** The error every command rejects with. */
export interface CommandError {
  code: string;
  message: string;
}
