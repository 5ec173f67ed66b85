-- StormOps Field server schema: plans, quotas, rate limiting, metering rollups, per-storm policy mode.
--
-- `plans` is platform data, not tenant data (no tenant_id, no row-level security, like `tenants`): one row
-- per plan tier of PRODUCT.md with its limits and prices. The operator changes them
-- (`stormops-server plan set`); grants (made by init_database): the application role may only read it.
-- Limits: `max_users`, `max_devices` and `requests_per_minute` are hard; synced events and storage have a
-- soft limit (warn, bill the overage) and a hard limit (refuse). Prices are integer cents (USD).
-- `tenants.plan` names a row here; the tier vocabulary is closed (domain::PlanTier), so no foreign key
-- (the catalog rule keeps single-column foreign keys pointing at `tenants` only).
CREATE TABLE plans (
    name text PRIMARY KEY,
    max_users bigint NOT NULL CHECK (max_users >= 0),
    max_devices bigint NOT NULL CHECK (max_devices >= 0),
    monthly_events bigint NOT NULL CHECK (monthly_events >= 0),
    monthly_events_hard bigint NOT NULL CHECK (monthly_events_hard >= monthly_events),
    storage_bytes bigint NOT NULL CHECK (storage_bytes >= 0),
    storage_bytes_hard bigint NOT NULL CHECK (storage_bytes_hard >= storage_bytes),
    requests_per_minute bigint NOT NULL CHECK (requests_per_minute >= 1),
    base_fee_cents bigint NOT NULL CHECK (base_fee_cents >= 0),
    event_overage_cents_per_1000 bigint NOT NULL CHECK (event_overage_cents_per_1000 >= 0),
    storage_overage_cents_per_gb bigint NOT NULL CHECK (storage_overage_cents_per_gb >= 0),
    model_run_cents bigint NOT NULL CHECK (model_run_cents >= 0),
    updated_at bigint NOT NULL
);
-- PRODUCT.md "Plans" defaults. A trial cannot buy overage, so its hard limits equal its soft ones; paid
-- plans may run to twice the soft limit (billed) before being refused. Storage in decimal bytes.
INSERT INTO plans VALUES
    ('trial', 5, 5, 50000, 50000, 500000000, 500000000, 120, 0, 0, 0, 0, 0),
    ('standard', 25, 50, 1000000, 2000000, 10000000000, 20000000000, 1200, 49900, 50, 25, 0, 0),
    ('enterprise', 500, 1000, 50000000, 100000000, 500000000000, 1000000000000, 12000, 499900, 30, 15, 0, 0);

-- Rate limiting: requests granted to a tenant per minute window, shared by every server instance (see
-- docs/plans-and-limits.md). `last_grant` is what the last reservation got (PostgreSQL 15 cannot return
-- the old row from ON CONFLICT DO UPDATE). Old windows are deleted by the server's usage task.
CREATE TABLE rate_windows (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    window_start bigint NOT NULL,
    granted bigint NOT NULL,
    last_grant bigint NOT NULL,
    PRIMARY KEY (tenant_id, window_start)
);

-- Live quota counters checked on the hot path: synced events per calendar month (period 'YYYY-MM') and
-- the latest storage sample (period 'latest').
CREATE TABLE quota_counters (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    kind text NOT NULL,
    period text NOT NULL,
    used bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, kind, period)
);

-- Hourly rollup of usage_events: sums per kind (storage: the hour's largest sample). Recomputed from the
-- events, so a re-run of the rollup writes the same rows.
CREATE TABLE usage_hourly (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    hour_start bigint NOT NULL,
    kind text NOT NULL,
    units bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour_start, kind)
);

-- The office's policy mode per storm (conservative, moderate, aggressive).
CREATE TABLE storm_policies (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    storm_id uuid NOT NULL,
    mode text NOT NULL,
    updated_at bigint NOT NULL,
    updated_by uuid,
    PRIMARY KEY (tenant_id, storm_id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);

DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rate_windows', 'quota_counters', 'usage_hourly', 'storm_policies'] LOOP
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
