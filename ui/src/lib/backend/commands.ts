// The bridge contract: every Tauri command the UI calls, with its argument object and result.
// The shell implements exactly this list: `#[tauri::command(rename_all = "snake_case")]`, one Rust
// parameter per top-level argument key, `Result<T, CommandError>` where CommandError serialises as
// `{ code, message }`. Events: `sync-status` carries a SyncStatus whenever it changes.

import type {
  CommandError,
  CreatedTenant,
  Crew,
  CrewDaySummary,
  CrewSyncHealth,
  Decision,
  Experiment,
  ExperimentSummary,
  ImportReport,
  InboxItem,
  JourneyTouch,
  Outcome,
  PolicyDecision,
  PolicyMode,
  PropertyDetail,
  PropertyQuery,
  RankedProperty,
  Session,
  Storm,
  SyncStatus,
  TenantEntry,
  Territory,
  TouchResult,
  Channel,
  UpliftDistribution,
  UsageReport,
  User,
  Uuid,
  Millis,
  Cents,
} from './types';

type NoArgs = Record<string, never>;

/** Command name → { args, result }. */
export interface Commands {
  // ---- tenant file and session (everyone) ----
  /** Tenant files known on this laptop (tenants.json). */
  list_tenants: { args: NoArgs; result: TenantEntry[] };
  /** Creates an encrypted tenant file; the recovery key is returned once and never again. */
  create_tenant: { args: { name: string; user: string; passphrase: string }; result: CreatedTenant };
  /** Opens a tenant file with a local user's passphrase. Errors: store.wrong_passphrase, store.unknown_user. */
  unlock: { args: { tenant_id: Uuid; user: string; passphrase: string }; result: Session };
  /** Closes the open tenant file (stops sync). */
  lock: { args: NoArgs; result: null };
  /** The open session, if any (after a window reload the shell still holds it). */
  current_session: { args: NoArgs; result: Session | null };
  /** Signs this laptop in to the tenant's server (registers the device); the role comes back in Session. */
  sign_in: {
    args: { server_url: string; tenant_slug: string; email: string; password: string };
    result: Session;
  };

  // ---- sync ----
  sync_status: { args: NoArgs; result: SyncStatus };
  /** Starts a sync in the background and returns at once; progress arrives as `sync-status` events. */
  sync_now: { args: NoArgs; result: null };
  /** Refused changes waiting for the user. */
  inbox: { args: NoArgs; result: InboxItem[] };
  /** Puts a refused change back in the outbox unchanged. */
  inbox_retry: { args: { change_id: Uuid }; result: null };
  /** Drops a refused change (and the local record it wrote, if it was an insert). */
  inbox_discard: { args: { change_id: Uuid }; result: null };
  /** Replaces a refused change's payload (validated locally) and puts it back in the outbox. */
  inbox_edit: { args: { change_id: Uuid; payload: unknown }; result: null };

  // ---- field ----
  /** Storms in the file, newest first. */
  storms: { args: NoArgs; result: Storm[] };
  /** Territories of a storm (all storms when storm_id is null). */
  territories: { args: { storm_id: Uuid | null }; result: Territory[] };
  /** One page of properties ranked by uplift (highest first, unscored last), filtered. */
  ranked_properties: { args: { query: PropertyQuery }; result: RankedProperty[] };
  /** How many properties the query's filters match (limit and offset ignored). */
  property_count: { args: { query: PropertyQuery }; result: number };
  property_detail: { args: { property_id: Uuid }; result: PropertyDetail };
  log_touch: {
    args: { property_id: Uuid; storm_id: Uuid; channel: Channel; result: TouchResult; notes: string };
    result: JourneyTouch;
  };
  log_outcome: {
    args: { property_id: Uuid; storm_id: Uuid; converted: boolean; contract_value_cents: Cents };
    result: Outcome;
  };
  /** A treat/hold decision; `is_override` needs a non-blank reason (validation.required) and a chief or admin. */
  decide: {
    args: {
      property_id: Uuid;
      storm_id: Uuid;
      decision: Decision;
      mode: PolicyMode;
      is_override: boolean;
      reason?: string | null;
    };
    result: PolicyDecision;
  };

  // ---- crew chief ----
  /** A crew's UTC day (`day` is YYYY-MM-DD); crew_id null = everyone. */
  crew_day: { args: { crew_id?: Uuid | null; day: string }; result: CrewDaySummary };
  /** Each laptop of the crew: last sync, pending and refused counts, device status. */
  crew_sync_health: { args: NoArgs; result: CrewSyncHealth };

  // ---- office ----
  users: { args: NoArgs; result: User[] };
  crews: { args: NoArgs; result: Crew[] };
  storm_create: {
    args: {
      event_id: string;
      name: string;
      started_at: Millis;
      ended_at: Millis | null;
      hail_size_in: number;
      wind_mph: number;
      affected_area: string;
    };
    result: Storm;
  };
  /** Imports properties from CSV text (header row; columns as the CLI's import). Any error imports nothing. */
  property_import_csv: { args: { storm_id: Uuid; csv_text: string }; result: ImportReport };
  /** The storm's experiment: arms, lift with its 95% interval, and the current model; null if none. */
  experiment_summary: { args: { storm_id: Uuid }; result: ExperimentSummary | null };
  /** Starts a storm's experiment with a treatment share strictly between 0 and 1. */
  experiment_create: { args: { storm_id: Uuid; treatment_share: number }; result: Experiment };
  /** The storm's current uplift scores and the health readings over them. */
  uplift_distribution: { args: { storm_id: Uuid }; result: UpliftDistribution };
  /** Metered usage this period against the plan's limits. */
  usage: { args: NoArgs; result: UsageReport };
}

export type CommandName = keyof Commands;
export type ArgsOf<K extends CommandName> = Commands[K]['args'];
export type ResultOf<K extends CommandName> = Commands[K]['result'];

/** Every command name, in the order above: the shell registers exactly these. */
export const COMMAND_NAMES = [
  'list_tenants',
  'create_tenant',
  'unlock',
  'lock',
  'current_session',
  'sign_in',
  'sync_status',
  'sync_now',
  'inbox',
  'inbox_retry',
  'inbox_discard',
  'inbox_edit',
  'storms',
  'territories',
  'ranked_properties',
  'property_count',
  'property_detail',
  'log_touch',
  'log_outcome',
  'decide',
  'crew_day',
  'crew_sync_health',
  'users',
  'crews',
  'storm_create',
  'property_import_csv',
  'experiment_summary',
  'experiment_create',
  'uplift_distribution',
  'usage',
] as const satisfies readonly CommandName[];

// Compile-time check that COMMAND_NAMES lists every command.
type Missing = Exclude<CommandName, (typeof COMMAND_NAMES)[number]>;
const _allListed: Missing extends never ? true : Missing = true;
void _allListed;

/** Event names the shell emits. */
export const EVENTS = { syncStatus: 'sync-status' } as const;

/** The UI's view of the bridge: one async method per command, plus the sync-status subscription. */
export type Backend = {
  readonly [K in CommandName]: (args: ArgsOf<K>) => Promise<ResultOf<K>>;
} & {
  /** Which implementation this is, for the About line. */
  readonly kind: 'tauri' | 'mock';
  /** Subscribes to `sync-status`; returns an unsubscribe function. */
  onSyncStatus(listener: (status: SyncStatus) => void): Promise<() => void>;
};

export type { CommandError };
