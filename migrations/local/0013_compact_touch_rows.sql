-- 0013: a smaller journey-touch row, since a crew logs touches all day and, in an encrypted file, every
-- page written is encrypted and signed. A touch loses about 30 of its about 200 bytes:
--
-- 1. `device_id` is NULL for this file's own device (meta.device_id), as the outbox's is (0006): a
--    laptop's touches are nearly all its own. A touch pulled from another device keeps its 16 bytes.
-- 2. `channel` and `result` are small integers instead of words (touch_columns.rs names them):
--    channel 1 door_knock, 2 call, 3 text, 4 mailer, 5 inspection, 6 estimate, 7 contract_signed;
--    result 1 no_answer, 2 left_info, 3 talked, 4 interested, 5 not_interested, 6 scheduled,
--    7 completed, 8 signed, 9 declined. A word added later takes the next number without a rebuild.
--
-- The table is rebuilt (copy and rename); touches keep their rowids, so their order and every outbox
-- reference (by id) stay as they were. A word no number is given for stops the migration (NOT NULL)
-- rather than losing a touch.
CREATE TABLE journey_touches_0013 (
    id          BLOB NOT NULL PRIMARY KEY,
    property_id BLOB NOT NULL,
    storm_id    BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    -- NULL: this file's device (meta.device_id).
    device_id   BLOB,
    channel     INTEGER NOT NULL CHECK (channel > 0),
    result      INTEGER NOT NULL CHECK (result > 0),
    notes       TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    CHECK (length(id) = 16 AND length(property_id) = 16 AND length(storm_id) = 16
           AND length(user_id) = 16 AND (device_id IS NULL OR length(device_id) = 16))
) STRICT;
INSERT INTO journey_touches_0013 (rowid, id, property_id, storm_id, user_id, device_id, channel, result, notes,
                                  occurred_at)
SELECT rowid, id, property_id, storm_id, user_id,
       nullif(device_id, (SELECT unhex(replace(device_id, '-', '')) FROM meta WHERE singleton = 1)),
       CASE channel WHEN 'door_knock' THEN 1 WHEN 'call' THEN 2 WHEN 'text' THEN 3 WHEN 'mailer' THEN 4
                    WHEN 'inspection' THEN 5 WHEN 'estimate' THEN 6 WHEN 'contract_signed' THEN 7 END,
       CASE result WHEN 'no_answer' THEN 1 WHEN 'left_info' THEN 2 WHEN 'talked' THEN 3 WHEN 'interested' THEN 4
                   WHEN 'not_interested' THEN 5 WHEN 'scheduled' THEN 6 WHEN 'completed' THEN 7
                   WHEN 'signed' THEN 8 WHEN 'declined' THEN 9 END,
       notes, occurred_at
  FROM journey_touches;
DROP TABLE journey_touches;
ALTER TABLE journey_touches_0013 RENAME TO journey_touches;
CREATE INDEX journey_touches_by_hour ON journey_touches (occurred_at / 3600000, property_id);
