-- Pushed journey touches, outcomes and policy decisions keep their foreign keys to the property and the
-- storm they name, but no longer one to `tenants` (as the feed and the ledger, 20261001000000_feed_keys).
--
-- A laptop's backlog is almost entirely these rows, and each carried three foreign-key checks, each a
-- lookup and a key-share lock per written row; the one to `tenants` guarded nothing the schema does not
-- already hold: row-level security's WITH CHECK pins every row's tenant_id to the transaction's tenant
-- (set from the verified token, for an active tenant), and the composite keys to `properties` and
-- `storms` — whose own keys to `tenants` stay — only accept a tenant_id that a row of that tenant
-- carries. Measured in psql on the (loaded) 2-core machine: one statement inserting 5,000 touches took
-- about 160 ms with the three checks and about 120 ms without this one. A tenant's purge deletes their
-- rows like any tenant table's.
ALTER TABLE journey_touches DROP CONSTRAINT journey_touches_tenant_id_fkey;
ALTER TABLE outcomes DROP CONSTRAINT outcomes_tenant_id_fkey;
ALTER TABLE policy_decisions DROP CONSTRAINT policy_decisions_tenant_id_fkey;
