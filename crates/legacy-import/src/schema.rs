//! The legacy single-tenant StormOps SQLite schema this crate accepts (documented in
//! `docs/legacy-import.md`). The reader needs these tables and columns; extra tables and columns are
//! ignored. The generator creates exactly this schema.

/// The tables a legacy database must have, in read order.
pub const REQUIRED_TABLES: [&str; 5] = [
    "storms",
    "properties",
    "journeys",
    "uplift_scores",
    "experiments",
];

/// The columns read from each table (a missing one is a typed error naming it).
pub const REQUIRED_COLUMNS: [(&str, &[&str]); 5] = [
    (
        "storms",
        &[
            "id",
            "event_id",
            "name",
            "started_at",
            "ended_at",
            "hail_size_in",
            "wind_mph",
            "affected_area",
            "status",
        ],
    ),
    (
        "properties",
        &[
            "id",
            "storm_id",
            "external_id",
            "address",
            "latitude",
            "longitude",
            "roof_age_years",
            "roof_material",
            "square_feet",
            "home_value_cents",
            "hail_size_in",
            "distance_to_core_km",
            "prior_claims",
            "owner_name",
            "owner_phone",
            "owner_email",
            "status",
        ],
    ),
    (
        "journeys",
        &[
            "id",
            "property_id",
            "channel",
            "result",
            "notes",
            "occurred_at",
        ],
    ),
    (
        "uplift_scores",
        &[
            "property_id",
            "uplift",
            "p_treat",
            "p_hold",
            "model_version",
            "scored_at",
        ],
    ),
    (
        "experiments",
        &["id", "storm_id", "treatment_share", "seed", "started_at"],
    ),
];

/// The legacy schema as the generator writes it. Times are Unix milliseconds; money is integer cents.
pub const LEGACY_SCHEMA: &str = "
CREATE TABLE storms (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    hail_size_in REAL NOT NULL,
    wind_mph REAL NOT NULL,
    affected_area TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE properties (
    id INTEGER PRIMARY KEY,
    storm_id INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    address TEXT NOT NULL,
    latitude REAL,
    longitude REAL,
    roof_age_years REAL,
    roof_material TEXT,
    square_feet REAL,
    home_value_cents INTEGER,
    hail_size_in REAL,
    distance_to_core_km REAL,
    prior_claims INTEGER NOT NULL DEFAULT 0,
    owner_name TEXT,
    owner_phone TEXT,
    owner_email TEXT,
    status TEXT NOT NULL
);
CREATE TABLE journeys (
    id INTEGER PRIMARY KEY,
    property_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    result TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    occurred_at INTEGER NOT NULL
);
CREATE TABLE uplift_scores (
    property_id INTEGER PRIMARY KEY,
    uplift REAL,
    p_treat REAL,
    p_hold REAL,
    model_version TEXT,
    scored_at INTEGER
);
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    storm_id INTEGER NOT NULL,
    treatment_share REAL NOT NULL,
    seed INTEGER NOT NULL,
    started_at INTEGER NOT NULL
);
";
