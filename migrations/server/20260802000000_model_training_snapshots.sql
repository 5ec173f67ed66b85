-- StormOps Field server schema, version 3: what each trained model saw.
--
-- The snapshot (`pg_current_snapshot()` as text) of the training transaction tells exactly which
-- outcomes a model was trained on: a change is new to the model when its txid is not visible in that
-- snapshot. The model's `data_watermark` (the snapshot's xmin) cannot say this alone, because changes
-- above it may already have been committed and seen. The storm column ties a model to its storm.
-- Same rules as 20260701000000_initial_schema.sql: tenant_id leads every key, composite foreign keys,
-- row-level security enabled and forced with the one plain-equality policy.
CREATE TABLE model_training_snapshots (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    model_id uuid NOT NULL,
    storm_id uuid NOT NULL,
    snapshot text NOT NULL,
    PRIMARY KEY (tenant_id, model_id),
    FOREIGN KEY (tenant_id, model_id) REFERENCES models (tenant_id, id),
    FOREIGN KEY (tenant_id, storm_id) REFERENCES storms (tenant_id, id)
);
CREATE INDEX model_training_snapshots_tenant_storm ON model_training_snapshots (tenant_id, storm_id);
ALTER TABLE model_training_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE model_training_snapshots FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON model_training_snapshots
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
