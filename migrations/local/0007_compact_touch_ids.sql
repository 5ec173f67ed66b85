-- 0007: journey touches keep their five ids (id, property, storm, user, device) as the UUIDs' 16 bytes (BLOB)
-- instead of their 36-character text: about 100 bytes less per row, and 20 less per entry of the id's unique
-- index and of `journey_touches_by_property`. Touches are the laptop's most frequent write (a crew logs
-- hundreds a day and a week offline queues tens of thousands), every written page is encrypted and signed,
-- so fewer bytes per touch is less to encrypt. What the app sees does not change: the rows read back to the
-- same records, and the sync payload of a touch is still its record serialised as JSON (ids as text).
--
-- The table is rebuilt (copy and rename) keeping each row's rowid. An id that is not a UUID cannot be
-- converted (`unhex` gives NULL) and fails the NOT NULL constraints: the migration's transaction rolls back
-- and the file stays as it was, instead of losing the row.
CREATE TABLE journey_touches_0007 (
    id          BLOB NOT NULL PRIMARY KEY,
    property_id BLOB NOT NULL,
    storm_id    BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    device_id   BLOB NOT NULL,
    channel     TEXT NOT NULL,
    result      TEXT NOT NULL,
    notes       TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    CHECK (length(id) = 16 AND length(property_id) = 16 AND length(storm_id) = 16
           AND length(user_id) = 16 AND length(device_id) = 16)
) STRICT;
INSERT INTO journey_touches_0007 (rowid, id, property_id, storm_id, user_id, device_id, channel, result, notes,
                                  occurred_at)
SELECT rowid, unhex(replace(id, '-', '')), unhex(replace(property_id, '-', '')), unhex(replace(storm_id, '-', '')),
       unhex(replace(user_id, '-', '')), unhex(replace(device_id, '-', '')), channel, result, notes, occurred_at
  FROM journey_touches;
DROP TABLE journey_touches;
ALTER TABLE journey_touches_0007 RENAME TO journey_touches;
-- A property's touches are found by its id alone: the timeline sorts the few it gets in memory, so the
-- index no longer repeats `occurred_at`. This index is the one touches land in at random places (one entry
-- per property visited), so every transaction rewrites — and encrypts — each leaf page it reaches; smaller
-- entries mean fewer leaf pages, which is what a commit of a few hundred touches mostly pays for.
CREATE INDEX journey_touches_by_property ON journey_touches (property_id);
CREATE INDEX journey_touches_by_time ON journey_touches (occurred_at);
