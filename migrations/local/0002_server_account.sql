-- The sync server this file belongs to and who signed in on it. Nothing here is secret: the refresh
-- token stays in sync_state, and the whole file is encrypted anyway.
CREATE TABLE server_account (
    singleton    INTEGER PRIMARY KEY CHECK (singleton = 1),
    server_url   TEXT NOT NULL,
    tenant_slug  TEXT NOT NULL,
    email        TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL,
    crew_id      TEXT,
    signed_in_at INTEGER NOT NULL
) STRICT;
