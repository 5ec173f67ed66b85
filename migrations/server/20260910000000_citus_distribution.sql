-- StormOps Field server schema: distribute the tables on Citus by tenant_id — only where the citus
-- extension is installed. On plain PostgreSQL (every test database, the compose stack) this migration
-- does nothing at all: the DO block returns before touching the catalog.
--
-- With Citus (see docs/scaling-citus.md; the extension must be created by a superuser and the workers
-- added before `stormops-server db init` runs this):
--  * reference tables: every table of schema public without a tenant_id column (tenants, plans,
--    tenant_lifecycle_log): small platform data, copied to every node, so tenant tables may keep their
--    foreign keys to them;
--  * distributed tables: every table with a tenant_id column, hash-distributed on tenant_id and co-located
--    (Citus's default co-location group for uuid columns), so one tenant's rows of every table live on
--    one node and each request's transaction is a single-node transaction;
--  * foreign keys: Citus distributes a table only when every table it references already is, and
--    crews and users reference each other; so every foreign key of schema public is dropped, the tables
--    distributed, and each key re-created from its own definition (pg_get_constraintdef), unchanged.
-- The catalog lint (crates/server-store/tests/citus_catalog.rs) holds every migration to the rules that
-- make this possible. A later migration that adds a table distributes it itself, under the same guard.
DO $citus$
DECLARE
    fk_tables text[] := '{}';
    fk_names text[] := '{}';
    fk_defs text[] := '{}';
    fk record;
    t text;
    i integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;

    FOR fk IN
        SELECT rel.relname::text AS tbl, c.conname::text AS name, pg_get_constraintdef(c.oid) AS def
          FROM pg_constraint c JOIN pg_class rel ON rel.oid = c.conrelid
         WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
         ORDER BY 1, 2
    LOOP
        fk_tables := fk_tables || fk.tbl;
        fk_names := fk_names || fk.name;
        fk_defs := fk_defs || fk.def;
        EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', fk.tbl, fk.name);
    END LOOP;

    FOR t IN
        SELECT c.relname::text FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND c.relname NOT LIKE '\_sqlx%'
           AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
         ORDER BY 1
    LOOP
        PERFORM create_reference_table(format('public.%I', t));
    END LOOP;

    FOR t IN
        SELECT c.relname::text FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
         ORDER BY 1
    LOOP
        PERFORM create_distributed_table(format('public.%I', t), 'tenant_id');
    END LOOP;

    FOR i IN 1 .. coalesce(array_length(fk_tables, 1), 0) LOOP
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s', fk_tables[i], fk_names[i], fk_defs[i]);
    END LOOP;
END
$citus$;
