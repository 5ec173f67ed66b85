-- Each laptop's sync health, for the crew chief's and the office's "sync health" screen
-- (`GET /v1/admin/devices`). The protocol carries no pending count from the laptop, so the server
-- keeps what it sees itself: the last accepted push (time and batch size), the last pull, and refused
-- batches (time, their refused changes, the total). Kept on the device's own row (no new tenant table:
-- the row already has the tenant's key, policy, export and purge), written by the push and pull
-- handlers. A pull records its time at most once a minute per device, so most pulls stay read-only.
ALTER TABLE devices
    ADD COLUMN last_push_at bigint,
    ADD COLUMN last_push_changes integer,
    ADD COLUMN last_pull_at bigint,
    ADD COLUMN last_refused_at bigint,
    ADD COLUMN last_refused_changes integer,
    ADD COLUMN refused_changes_total bigint NOT NULL DEFAULT 0;
