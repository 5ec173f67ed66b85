-- StormOps Field server schema, version 1.
--
-- Rules every table here follows (checked by the catalog tests in crates/server-store/tests):
--  * every tenant table has `tenant_id uuid NOT NULL`, `PRIMARY KEY (tenant_id, ...)`, unique indexes led
--    by tenant_id, and composite foreign keys `(tenant_id, x) REFERENCES t (tenant_id, id)` (Citus co-location);
--  * row-level security is ENABLED and FORCED, with one policy that is the plain equality
--    `tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid` in both USING and WITH CHECK:
--    no context means zero rows and refused writes, never a cast error;
--  * no sequences (client-generated UUIDs), no triggers, no views, no functions;
--  * column names equal the domain record's field names, so `to_jsonb(row)` minus `tenant_id` (and
--    `field_clocks`) deserialises into the `domain` record. Times are Unix milliseconds (bigint), like
--    `domain::Timestamp`; money is integer cents.
-- Grants are not made here: role names carry a per-database prefix, so `server_store::init_database`
-- grants after migrating (and adds the control-plane policy on `tenants`).

-- Control plane: one row per contractor. The application role reads only its own tenant's row.
CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    plan text NOT NULL,
    status text NOT NULL,
    created_at bigint NOT NULL
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants
    USING (id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (id = nullif(current_setting('app.tenant_id', true), '')::uuid);

CREATE TABLE crews (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    name text NOT NULL,
    chief_id uuid,
    field_clocks jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE users (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    crew_id uuid,
    password_hash text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, crew_id) REFERENCES crews (tenant_id, id)
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
ALTER TABLE crews ADD FOREIGN KEY (tenant_id, chief_id) REFERENCES users (tenant_id, id);

CREATE TABLE devices (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    registered_at bigint NOT NULL,
    revoked_at bigint,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

-- Refresh tokens are stored hashed; a family is one login's chain of rotations, so reuse of a rotated
-- token revokes the whole family.
CREATE TABLE refresh_tokens (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    family_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    device_id uuid NOT NULL,
    issued_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    used_at bigint,
    revoked_at bigint,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id)
);
CREATE UNIQUE INDEX refresh_tokens_tenant_hash ON refresh_tokens (tenant_id, token_hash);
CREATE INDEX refresh_tokens_tenant_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_tenant_device ON refresh_tokens (tenant_id, device_id);

-- Append-only: the application role may only INSERT and SELECT here.
CREATE TABLE audit_log (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    actor uuid,
    action text NOT NULL,
    target text NOT NULL,
    device_id uuid,
    request_id text,
    at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

CREATE TABLE storms (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    event_id text NOT NULL,
    name text NOT NULL,
    started_at bigint NOT NULL,
    ended_at bigint,
    hail_size_in double precision NOT NULL,
    wind_mph double precision NOT NULL,
    affected_area text NOT NULL,
    status text NOT NULL,
    field_clocks jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE properties (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    storm_id uuid NOT NULL,
    external_id text NOT NULL,
    address text NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    roof_age_years double precision,
    roof_material text,
    square_feet double precision,
    home_value bigint,
    hail_size_in double precision,
    distance_to_core_km double precision,
    prior_claims integer NOT NULL,
    owner_name text,
    owner_phone text,
    owner_email text,
    status text NOT NULL,
    -- The HLC text of the last write of each field: the per-field last-writer-wins merge state.
    field_clocks jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);
CREATE INDEX properties_tenant_storm ON properties (tenant_id, storm_id);

CREATE TABLE territories (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    storm_id uuid NOT NULL,
    name text NOT NULL,
    crew_id uuid,
    field_clocks jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id),
    FOREIGN KEY (tenant_id, crew_id) REFERENCES crews (tenant_id, id)
);

CREATE TABLE assignments (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    storm_id uuid NOT NULL,
    property_id uuid NOT NULL,
    territory_id uuid,
    crew_id uuid,
    user_id uuid,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id),
    FOREIGN KEY (tenant_id, territory_id) REFERENCES territories (tenant_id, id),
    FOREIGN KEY (tenant_id, crew_id) REFERENCES crews (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX assignments_tenant_property ON assignments (tenant_id, property_id);

CREATE TABLE experiments (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    storm_id uuid NOT NULL,
    treatment_share double precision NOT NULL,
    -- u64 in the domain: numeric so every value fits.
    seed numeric(20, 0) NOT NULL,
    started_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);

-- A property's arm is fixed once made. One experiment per storm and one storm per property, so the
-- property id identifies the row on the wire.
CREATE TABLE arm_assignments (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    experiment_id uuid NOT NULL,
    property_id uuid NOT NULL,
    arm text NOT NULL,
    assigned_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, experiment_id, property_id),
    FOREIGN KEY (tenant_id, experiment_id) REFERENCES experiments (tenant_id, id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id)
);

CREATE TABLE journey_touches (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    property_id uuid NOT NULL,
    storm_id uuid NOT NULL,
    user_id uuid NOT NULL,
    device_id uuid NOT NULL,
    channel text NOT NULL,
    result text NOT NULL,
    notes text NOT NULL,
    occurred_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);
CREATE INDEX journey_touches_tenant_property ON journey_touches (tenant_id, property_id);

CREATE TABLE outcomes (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    property_id uuid NOT NULL,
    storm_id uuid NOT NULL,
    converted boolean NOT NULL,
    contract_value bigint NOT NULL,
    occurred_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);
CREATE INDEX outcomes_tenant_property ON outcomes (tenant_id, property_id);

CREATE TABLE policy_decisions (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    property_id uuid NOT NULL,
    storm_id uuid NOT NULL,
    decision text NOT NULL,
    mode text NOT NULL,
    uplift_score double precision,
    model_version text,
    reason text,
    is_override boolean NOT NULL,
    decided_by uuid NOT NULL,
    decided_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);
CREATE INDEX policy_decisions_tenant_property ON policy_decisions (tenant_id, property_id);

-- The latest score of each property (a property belongs to one storm), with its provenance.
CREATE TABLE uplift_scores (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    property_id uuid NOT NULL,
    storm_id uuid NOT NULL,
    uplift double precision NOT NULL,
    p_treat double precision NOT NULL,
    p_hold double precision NOT NULL,
    model_version text NOT NULL,
    trained_at bigint NOT NULL,
    data_watermark bigint NOT NULL,
    PRIMARY KEY (tenant_id, property_id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);

CREATE TABLE models (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    version text NOT NULL,
    learner text NOT NULL,
    trained_at bigint NOT NULL,
    training_rows numeric(20, 0) NOT NULL,
    data_watermark bigint NOT NULL,
    qini double precision NOT NULL,
    auuc double precision NOT NULL,
    uplift_at_30 double precision NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX models_tenant_version ON models (tenant_id, version);

-- Idempotency of pushes: a change id seen once is never applied again.
CREATE TABLE applied_changes (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    change_id uuid NOT NULL,
    device_id uuid NOT NULL,
    hlc text NOT NULL,
    entity text NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, change_id)
);

-- The pull feed. `txid` is the writing transaction's id, so the feed can be read in commit-safe order:
-- see `server_store::sync::pull` for why `(txid, id)` and the snapshot horizon never skip a row.
-- scope_crew / scope_user narrow who pulls a row (both NULL: everyone of the tenant).
CREATE TABLE change_log (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    op text NOT NULL,
    record jsonb,
    field_clocks jsonb,
    scope_crew uuid,
    scope_user uuid,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX change_log_tenant_txid ON change_log (tenant_id, txid, id);

CREATE TABLE usage_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    kind text NOT NULL,
    units bigint NOT NULL,
    occurred_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX usage_events_tenant_at ON usage_events (tenant_id, occurred_at);

CREATE TABLE data_quality_metrics (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    storm_id uuid,
    check_name text NOT NULL,
    value double precision NOT NULL,
    expected_low double precision NOT NULL,
    expected_high double precision NOT NULL,
    status text NOT NULL,
    runbook text NOT NULL,
    measured_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);

-- Row-level security on every tenant table: the same plain equality in USING and WITH CHECK.
DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'crews', 'users', 'devices', 'refresh_tokens', 'audit_log', 'storms', 'properties', 'territories',
        'assignments', 'experiments', 'arm_assignments', 'journey_touches', 'outcomes', 'policy_decisions',
        'uplift_scores', 'models', 'applied_changes', 'change_log', 'usage_events', 'data_quality_metrics'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)',
            t);
    END LOOP;
END
$rls$;
