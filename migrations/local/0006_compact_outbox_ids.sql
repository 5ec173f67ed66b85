-- 0006: a smaller outbox row per change (~116 bytes less per row and its index entries), since every local
-- write appends one and each written page is encrypted.
--
-- 1. `change_id` and `entity_id` are the UUIDs' 16 bytes (BLOB) instead of their 36-character text, in the row
--    and in `sqlite_autoindex` (change_id, for receipts) and `outbox_by_record` (entity, entity_id).
-- 2. `device_id` is NULL for a change of this file's own device (meta.device_id) — every change this laptop
--    writes — and is read back as that id.
--
-- The table is rebuilt (copy and rename); rows already queued keep their order (`seq`), state and payloads.
CREATE TABLE outbox_0006 (
    seq            INTEGER PRIMARY KEY,
    change_id      BLOB NOT NULL UNIQUE,
    hlc            TEXT NOT NULL,
    -- NULL: this file's device (meta.device_id).
    device_id      TEXT,
    entity         TEXT NOT NULL,
    entity_id      BLOB NOT NULL,
    op             TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    -- NULL: the insert of an append-only record; the payload is the record as stored (0005).
    payload        TEXT,
    -- For updates: the fields' values and clocks before the write, so discarding it can restore them.
    before         TEXT,
    state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'refused')),
    refused_code   TEXT,
    refused_reason TEXT,
    refused_at     INTEGER,
    created_at     INTEGER NOT NULL,
    CHECK (payload IS NOT NULL OR (op = 'insert' AND entity IN ('journey_touch', 'outcome', 'policy_decision')))
) STRICT;
INSERT INTO outbox_0006 (seq, change_id, hlc, device_id, entity, entity_id, op, payload, before, state,
                         refused_code, refused_reason, refused_at, created_at)
SELECT seq, unhex(replace(change_id, '-', '')), hlc, nullif(device_id, (SELECT device_id FROM meta)), entity,
       unhex(replace(entity_id, '-', '')), op, payload, before, state, refused_code, refused_reason, refused_at,
       created_at
  FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_0006 RENAME TO outbox;
CREATE INDEX outbox_by_record ON outbox (entity, entity_id);
CREATE INDEX outbox_refused ON outbox (refused_at, seq) WHERE state = 'refused';
