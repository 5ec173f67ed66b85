-- 0008: the storm's policy mode as the office set it, pulled from the server (entity `storm_policy`,
-- protocol 2). One row per storm, replaced whole by each pulled row: the record is server-owned, so there
-- are no field clocks to merge, and the pull feed delivers the office's changes in commit order, so the
-- last row applied is the office's current choice. The offline policy decides in this mode unless the
-- caller names one; a storm without a row is decided in the product's default mode, moderate.
CREATE TABLE storm_policies (
    storm_id   TEXT PRIMARY KEY,
    mode       TEXT NOT NULL CHECK (mode IN ('conservative', 'moderate', 'aggressive')),
    updated_at INTEGER NOT NULL,
    -- The admin who set it (NULL only if the server no longer knows the user).
    updated_by TEXT
) STRICT;
