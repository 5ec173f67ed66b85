-- StormOps Field server schema, version 2: per-tenant settings (health-check thresholds).
--
-- Follows the rules at the top of 20260701000000_initial_schema.sql: tenant_id leads the key, row-level
-- security is enabled and forced with the one plain-equality policy, no sequences, triggers, views or
-- functions. `health_thresholds` holds the overrides of `uplift::health::HealthThresholds` as a JSON
-- object; a missing key means the PRODUCT.md default.
CREATE TABLE tenant_settings (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    health_thresholds jsonb NOT NULL DEFAULT '{}',
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant_id)
);
ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
