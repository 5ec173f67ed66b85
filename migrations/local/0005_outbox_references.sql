-- 0005: a lighter outbox for the field's most frequent writes (journey touches, outcomes, decisions).
--
-- 1. The insert of an append-only record no longer copies the record into the outbox: `payload` is NULL and
--    the change's payload is rebuilt from the record when it is read (crates/local-store outbox.rs). An
--    append-only record is never changed after its insert (a pulled copy is insert-if-absent; an edited refused
--    insert rewrites the record and queues a new change with its payload), so the record as stored is exactly
--    the payload that was written. Before such a record is deleted (a pulled tombstone, an edit or discard of
--    its refused insert), its payload is written into the outbox row (rows.rs delete_record). Every other change
--    (mutable records, updates) keeps its payload. The JSON copy was ~600 bytes of the ~1,300 written per touch.
--    Rows written before this migration keep their payloads.
--
-- 2. `outbox_by_state (state, hlc)` is gone: the outbox is only written by this device, whose clock never goes
--    backwards, so `seq` (insertion order) is HLC order and pending changes are read in `seq` order. The inbox
--    (refused changes, rare) has a partial index of its own.
--
-- SQLite cannot relax a NOT NULL column in place, so the table is rebuilt (standard copy-and-rename).
CREATE TABLE outbox_0005 (
    seq            INTEGER PRIMARY KEY,
    change_id      TEXT NOT NULL UNIQUE,
    hlc            TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    entity         TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    op             TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    -- NULL: the insert of an append-only record; the payload is the record as stored.
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
INSERT INTO outbox_0005 (seq, change_id, hlc, device_id, entity, entity_id, op, payload, before, state,
                         refused_code, refused_reason, refused_at, created_at)
SELECT seq, change_id, hlc, device_id, entity, entity_id, op, payload, before, state,
       refused_code, refused_reason, refused_at, created_at
  FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_0005 RENAME TO outbox;
CREATE INDEX outbox_by_record ON outbox (entity, entity_id);
CREATE INDEX outbox_refused ON outbox (refused_at, seq) WHERE state = 'refused';
