CREATE INDEX assignments_by_property ON assignments (property_id, territory_id);

CREATE INDEX journey_touches_by_hour ON journey_touches (occurred_at / 3600000, property_id);

CREATE INDEX outbox_by_record ON outbox (entity, entity_id) WHERE change_id IS NOT entity_id;

CREATE INDEX outbox_refused ON outbox (refused_at, seq) WHERE state = 1;

CREATE INDEX outcomes_by_property ON outcomes (property_id, occurred_at);

CREATE INDEX outcomes_by_time ON outcomes (occurred_at);

CREATE INDEX policy_decisions_by_property ON policy_decisions (property_id, decided_at);

CREATE INDEX properties_ranked ON properties (storm_id, score_uplift DESC, id);

CREATE INDEX properties_ranked_all ON properties (score_uplift DESC, id);

CREATE INDEX users_by_crew ON users (crew_id);

CREATE TABLE arm_assignments (
    experiment_id TEXT NOT NULL,
    property_id   TEXT NOT NULL,
    arm           TEXT NOT NULL,
    assigned_at   INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, property_id)
) STRICT;

CREATE TABLE assignments (
    id           TEXT PRIMARY KEY,
    storm_id     TEXT NOT NULL,
    property_id  TEXT NOT NULL,
    territory_id TEXT,
    crew_id      TEXT,
    user_id      TEXT
) STRICT;

CREATE TABLE crews (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    chief_id     TEXT,
    field_clocks TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE experiments (
    id              TEXT PRIMARY KEY,
    storm_id        TEXT NOT NULL,
    treatment_share REAL NOT NULL,
    -- u64 seeds do not fit SQLite's signed integer; kept as decimal text.
    seed            TEXT NOT NULL,
    started_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE "journey_touches" (
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

CREATE TABLE local_users (
    label      TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE meta (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    tenant_id   TEXT NOT NULL,
    tenant_name TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    last_hlc    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE "outbox" (
    seq            INTEGER PRIMARY KEY,
    change_id      BLOB NOT NULL UNIQUE,
    hlc            BLOB NOT NULL CHECK (length(hlc) = 17),
    -- NULL: this file's device (meta.device_id).
    device_id      TEXT,
    -- No upper bound: an entity added later takes the next code without a rebuild of this table.
    entity         INTEGER NOT NULL CHECK (entity > 0),
    entity_id      BLOB NOT NULL,
    op             INTEGER NOT NULL CHECK (op IN (0, 1, 2)),
    -- NULL: the insert of an append-only record; the payload is the record as stored (0005).
    payload        TEXT,
    -- For updates: the fields' values and clocks before the write, so discarding it can restore them.
    before         TEXT,
    state          INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1)),
    refused_code   TEXT,
    refused_reason TEXT,
    refused_at     INTEGER,
    created_at     INTEGER NOT NULL,
    CHECK (payload IS NOT NULL OR (op = 0 AND entity IN (7, 8, 9)))
) STRICT;

CREATE TABLE outcomes (
    id                   TEXT PRIMARY KEY,
    property_id          TEXT NOT NULL,
    storm_id             TEXT NOT NULL,
    converted            INTEGER NOT NULL,
    contract_value_cents INTEGER NOT NULL,
    occurred_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE policy_decisions (
    id            TEXT PRIMARY KEY,
    property_id   TEXT NOT NULL,
    storm_id      TEXT NOT NULL,
    decision      TEXT NOT NULL,
    mode          TEXT NOT NULL,
    uplift_score  REAL,
    model_version TEXT,
    reason        TEXT,
    is_override   INTEGER NOT NULL,
    decided_by    TEXT NOT NULL,
    decided_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE properties (
    id                  TEXT PRIMARY KEY,
    storm_id            TEXT NOT NULL,
    external_id         TEXT NOT NULL,
    address             TEXT NOT NULL,
    -- Lowercased, whitespace-collapsed address for substring search (SQLite's lower() is ASCII-only).
    address_search      TEXT NOT NULL,
    latitude            REAL NOT NULL,
    longitude           REAL NOT NULL,
    roof_age_years      REAL,
    roof_material       TEXT,
    square_feet         REAL,
    home_value_cents    INTEGER,
    hail_size_in        REAL,
    distance_to_core_km REAL,
    prior_claims        INTEGER NOT NULL,
    owner_name          TEXT,
    owner_phone         TEXT,
    owner_email         TEXT,
    status              TEXT NOT NULL,
    field_clocks        TEXT NOT NULL DEFAULT '{}',
    -- Kept by triggers from uplift_scores and policy_decisions so the ranked list walks one index.
    score_uplift        REAL,
    latest_decision     TEXT,
    latest_decision_at  INTEGER,
    latest_decision_id  TEXT,
    UNIQUE (storm_id, external_id)
) STRICT;

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

CREATE TABLE storm_policies (
    storm_id   TEXT PRIMARY KEY,
    mode       TEXT NOT NULL CHECK (mode IN ('conservative', 'moderate', 'aggressive')),
    updated_at INTEGER NOT NULL,
    -- The admin who set it (NULL only if the server no longer knows the user).
    updated_by TEXT
) STRICT;

CREATE TABLE storms (
    id            TEXT PRIMARY KEY,
    event_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    hail_size_in  REAL NOT NULL,
    wind_mph      REAL NOT NULL,
    affected_area TEXT NOT NULL,
    status        TEXT NOT NULL,
    field_clocks  TEXT NOT NULL DEFAULT '{}'
) STRICT;

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

CREATE TABLE sync_state (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    cursor        TEXT,
    watermark     INTEGER,
    last_pull_at  INTEGER,
    last_push_at  INTEGER,
    refresh_token TEXT
) STRICT;

CREATE TABLE territories (
    id           TEXT PRIMARY KEY,
    storm_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    crew_id      TEXT,
    field_clocks TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE "uplift_scores" (
    property_id    TEXT NOT NULL,
    storm_id       TEXT NOT NULL,
    uplift         REAL NOT NULL,
    p_treat        REAL NOT NULL,
    p_hold         REAL NOT NULL,
    model_version  TEXT NOT NULL,
    trained_at     INTEGER NOT NULL,
    data_watermark INTEGER NOT NULL,
    PRIMARY KEY (property_id, storm_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    crew_id      TEXT,
    field_clocks TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TRIGGER policy_decisions_latest_delete AFTER DELETE ON policy_decisions BEGIN
    UPDATE properties
       SET (latest_decision, latest_decision_at, latest_decision_id) = (
           SELECT d.decision, d.decided_at, d.id FROM policy_decisions d
            WHERE d.property_id = OLD.property_id AND d.storm_id = OLD.storm_id
            ORDER BY d.decided_at DESC, d.id DESC LIMIT 1)
     WHERE id = OLD.property_id AND storm_id = OLD.storm_id;
END;

CREATE TRIGGER policy_decisions_latest_insert AFTER INSERT ON policy_decisions BEGIN
    UPDATE properties
       SET latest_decision = NEW.decision, latest_decision_at = NEW.decided_at, latest_decision_id = NEW.id
     WHERE id = NEW.property_id AND storm_id = NEW.storm_id
       AND (latest_decision_at IS NULL OR (NEW.decided_at, NEW.id) > (latest_decision_at, latest_decision_id));
END;

CREATE TRIGGER uplift_scores_rank_delete AFTER DELETE ON uplift_scores BEGIN
    UPDATE properties SET score_uplift = NULL WHERE id = OLD.property_id AND storm_id = OLD.storm_id;
END;

