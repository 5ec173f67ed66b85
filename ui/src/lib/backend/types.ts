// Hand-written TypeScript mirrors of the Rust serde shapes the bridge carries (snake_case JSON).
// Sources: crates/domain (records.rs, enums.rs), crates/local-store (queries.rs, outbox.rs, data_dir.rs),
// crates/uplift (experiment.rs, health.rs), crates/sync-protocol (changes.rs). The bridge's own shapes and
// desktop-core status.rs are generated from Rust into ./generated (re-exported below).

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

// ---- shapes defined by the bridge itself (the shell assembles them), and desktop-core status.rs ----
// Generated from desktop-core's Rust types by `cargo xtask codegen` (ts-rs); never edit them here.
export type {
  CommandError,
  Connectivity,
  CreatedTenant,
  CrewSyncHealth,
  DeviceSyncHealth,
  ImportLineError,
  ImportReport,
  NewStorm,
  Phase,
  Progress,
  PropertyDetail,
  PropertyQuery,
  RankedProperty,
  Session,
  StatusError,
  SyncStatus,
} from './generated';

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
  /** Null until both arms have outcomes. */
  lift: LiftEstimate | null;
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

