-- The storm's policy mode reaches the laptops: since this version `set_storm_policy` writes a pull-feed row
-- (entity `storm_policy`, entity id = the storm id, record = the policy row without tenant_id, no crew or
-- user scope: every laptop of the tenant pulls it, like the storm itself) in the same statement as the
-- policy row. This migration gives every policy set before it the feed row it would have had, so laptops
-- learn the office's current mode in their next pull without the office setting it again.
--
-- The owner role runs migrations and is subject to the tenant policies (FORCE ROW LEVEL SECURITY, no
-- BYPASSRLS): without a tenant context it would read no policy row and be refused every feed insert. The
-- backfill is one statement across tenants, so FORCE is lifted on the two tables it touches for its
-- duration and restored before the migration commits; the migration is one transaction, so no other
-- session ever sees the tables without FORCE (ALTER TABLE holds an exclusive lock on them until commit).
-- The service role is unaffected either way (it owns nothing; the policies always apply to it).
ALTER TABLE storm_policies NO FORCE ROW LEVEL SECURITY;
ALTER TABLE change_log NO FORCE ROW LEVEL SECURITY;

INSERT INTO change_log (tenant_id, id, entity, entity_id, op, record, field_clocks, scope_crew, scope_user)
SELECT p.tenant_id, gen_random_uuid(), 'storm_policy', p.storm_id, 'insert', to_jsonb(p) - 'tenant_id',
       NULL, NULL, NULL
  FROM storm_policies p;

ALTER TABLE storm_policies FORCE ROW LEVEL SECURITY;
ALTER TABLE change_log FORCE ROW LEVEL SECURITY;
