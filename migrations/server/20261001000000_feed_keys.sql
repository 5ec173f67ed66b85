-- The pull feed and the idempotency ledger without a foreign key to `tenants`.
--
-- Since this version a pushed append-only record's feed row is keyed by its change id, so `change_log` is
-- also the idempotency record of almost every push, and `applied_changes` holds only the changes that
-- leave no feed row of their own (see `server_store::sync::push`). Both are append-only logs that only the
-- server writes, always inside a tenant transaction, and row-level security's WITH CHECK already pins
-- every row's tenant_id to the transaction's tenant. The foreign key to `tenants` added nothing to that
-- but a key-share lock and a lookup of the tenant's row per written row (one per pushed change), the
-- largest single cost of a push after the record's own insert. Every record table keeps its foreign keys,
-- `tenant_id` led keys and policies; the feed and the ledger keep theirs (primary key and indexes led by
-- tenant_id, RLS enabled and forced). A tenant's purge deletes their rows like any tenant table's.
ALTER TABLE change_log DROP CONSTRAINT change_log_tenant_id_fkey;
ALTER TABLE applied_changes DROP CONSTRAINT applied_changes_tenant_id_fkey;
