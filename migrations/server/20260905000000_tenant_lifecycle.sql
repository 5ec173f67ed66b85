-- StormOps Field server schema: the tenant lifecycle (export, delete with a grace period, purge).
--
-- `tenants` gains the lifecycle's bookkeeping: when the tenant was last exported (deletion needs an export
-- or an explicit force), when deletion was asked for, and the time after which the purge may run. A tenant
-- whose status is 'deleted' and whose purge_after is set is "deleting": refused by the API like a deleted
-- tenant, still holding its rows until the purge.
--
-- `tenant_lifecycle_log` is the operator's own record of every lifecycle step. It is not tenant data (no
-- tenant_id column; the tenant's id is `subject_tenant`, without a foreign key) because it must outlive the
-- purge that removes every row of the tenant, its audit log included. Grants (made by init_database, where
-- the prefixed role names are known): the control role may INSERT and SELECT, never UPDATE or DELETE; the
-- application role has no access at all.
ALTER TABLE tenants ADD COLUMN last_export_at bigint;
ALTER TABLE tenants ADD COLUMN deletion_requested_at bigint;
ALTER TABLE tenants ADD COLUMN purge_after bigint;

CREATE TABLE tenant_lifecycle_log (
    id uuid PRIMARY KEY,
    subject_tenant uuid NOT NULL,
    slug text NOT NULL,
    action text NOT NULL,
    detail text NOT NULL,
    at bigint NOT NULL
);
CREATE INDEX tenant_lifecycle_log_subject ON tenant_lifecycle_log (subject_tenant, at);

-- An office admin disables a user instead of deleting it (its journeys, decisions and audit entries keep
-- naming it): a disabled user cannot sign in, and disabling revokes its devices and tokens.
ALTER TABLE users ADD COLUMN disabled_at bigint;
