-- The pull feed keeps each record and its field clocks as the JSON text laptops receive (`json`), not
-- as `jsonb`. The feed is written once and read by every laptop of the tenant, and the pull sends the
-- text on untouched (`server_store::sync::pull`): as `jsonb`, PostgreSQL printed every record again on
-- every pull — walking the binary form and escaping each string (`escape_json` alone was about a fifth
-- of PostgreSQL's time in a 200,000-property first sync). As `json` the text is printed once, when the
-- row is written, and a pull reads it as stored. Writers of mutable and tenant-wide records still build
-- it with `to_jsonb`, so its text is the same as before; a pushed touch, outcome or decision is printed
-- with `to_json` over its columns (no `jsonb` built only to be printed): its keys come in column order
-- and a double keeps all its digits. Laptops read either. The few server queries that look into a feed
-- record (`record->>'storm_id'` when counting new outcomes) work on `json` alike.
--
-- The rewrite of existing rows takes the table's exclusive lock for its duration; the feed is read by
-- pulls only, which wait for it.
ALTER TABLE change_log
    ALTER COLUMN record TYPE json USING record::json,
    ALTER COLUMN field_clocks TYPE json USING field_clocks::json;
