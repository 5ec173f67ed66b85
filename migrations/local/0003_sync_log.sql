-- One row per sync attempt, for the status screen, the crew's sync health and the diagnostics bundle:
-- when, how it ended (a stable code, never a token or a record's content), what moved, how long it took.
CREATE TABLE sync_log (
    seq         INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    elapsed_ms  INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    error_code  TEXT,
    pushed      INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    refused     INTEGER NOT NULL,
    pulled      INTEGER NOT NULL,
    bytes_sent  INTEGER NOT NULL,
    bytes_received INTEGER NOT NULL
) STRICT;
