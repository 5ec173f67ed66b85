//! Sample legacy databases for tests and benchmarks: the accepted schema filled with plausible storms,
//! properties, journeys, scores and experiments from a seed, optionally with broken rows (each of a
//! different kind, all listed in the result so a test can expect exactly them) or with tables dropped.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, params};

use crate::LegacyError;
use crate::schema::LEGACY_SCHEMA;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Valid properties (spread over the storms).
    pub properties: usize,
    pub storms: usize,
    /// Journeys per property, on average (0 to twice this).
    pub journeys_per_property: usize,
    /// Extra broken rows to add, of rotating kinds (see [`BROKEN_KINDS`]).
    pub broken_rows: usize,
    /// Tables to drop after filling (to exercise the missing-table error).
    pub drop_tables: Vec<String>,
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            properties: 200,
            storms: 2,
            journeys_per_property: 3,
            broken_rows: 0,
            drop_tables: Vec::new(),
            seed: 7,
        }
    }
}

/// The kinds of broken row, in the order they are injected: (table, what is wrong).
pub const BROKEN_KINDS: [(&str, &str); 6] = [
    ("properties", "latitude out of range"),
    ("properties", "unknown roof material"),
    ("journeys", "unknown channel"),
    ("uplift_scores", "p_treat above 1"),
    ("properties", "unknown storm"),
    ("storms", "empty name"),
];

/// What was generated: row counts of valid rows and the (table, old id) of every broken row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub storms: usize,
    pub properties: usize,
    pub journeys: usize,
    pub scores: usize,
    pub experiments: usize,
    pub broken: Vec<(String, i64)>,
}

/// A fixed base time (2025-06-01) so generated databases are identical for one seed.
const BASE_MS: i64 = 1_748_736_000_000;

fn sqlite(e: rusqlite::Error) -> LegacyError {
    LegacyError::Generate(e.to_string())
}

/// Writes a legacy database at `path` (which must not exist).
pub fn generate(path: &Path, options: &GenerateOptions) -> Result<Generated, LegacyError> {
    if path.exists() {
        return Err(LegacyError::Generate(format!(
            "{} exists; choose a new file",
            path.display()
        )));
    }
    let mut conn = Connection::open(path).map_err(sqlite)?;
    conn.execute_batch(LEGACY_SCHEMA).map_err(sqlite)?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut out = Generated::default();
    let tx = conn.transaction().map_err(sqlite)?;
    let storms = options.storms.max(1);
    for s in 1..=storms as i64 {
        tx.execute(
            "INSERT INTO storms (id, event_id, name, started_at, ended_at, hail_size_in, wind_mph, affected_area, status)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, 'active')",
            params![
                s,
                format!("NWS-{s}"),
                format!("Storm {s}"),
                BASE_MS + s * 86_400_000,
                rng.gen_range(0.75..3.0f64),
                rng.gen_range(30.0..90.0f64),
                format!("County {s}, OK"),
            ],
        )
        .map_err(sqlite)?;
        tx.execute(
            "INSERT INTO experiments (id, storm_id, treatment_share, seed, started_at) VALUES (?1, ?1, 0.8, ?2, ?3)",
            params![s, 1000 + s, BASE_MS + s * 86_400_000 + 3_600_000],
        )
        .map_err(sqlite)?;
        out.storms += 1;
        out.experiments += 1;
    }
    let materials = ["asphalt_shingle", "metal", "tile", "wood_shake", "slate"];
    let channels = ["door_knock", "call", "text", "mailer", "inspection"];
    let results = [
        "no_answer",
        "left_info",
        "talked",
        "interested",
        "scheduled",
    ];
    let mut journey_id = 0i64;
    {
        let mut property = tx
            .prepare(
                "INSERT INTO properties (id, storm_id, external_id, address, latitude, longitude, roof_age_years, roof_material,
                    square_feet, home_value_cents, hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL, 'new')",
            )
            .map_err(sqlite)?;
        let mut journey = tx
            .prepare(
                "INSERT INTO journeys (id, property_id, channel, result, notes, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sqlite)?;
        let mut score = tx
            .prepare(
                "INSERT INTO uplift_scores (property_id, uplift, p_treat, p_hold, model_version, scored_at) VALUES (?1, ?2, ?3, ?4, 'legacy-v3', ?5)",
            )
            .map_err(sqlite)?;
        for p in 1..=options.properties as i64 {
            let storm = 1 + (p - 1) % storms as i64;
            property
                .execute(params![
                    p,
                    storm,
                    format!("LEG-{p:06}"),
                    format!("{} Legacy Rd", 100 + p),
                    35.0 + rng.gen_range(0.0..1.0f64),
                    -97.5 + rng.gen_range(0.0..1.0f64),
                    rng.gen_range(1.0..40.0f64),
                    materials[rng.gen_range(0..materials.len())],
                    rng.gen_range(900.0..4_000.0f64),
                    rng.gen_range(10_000_000..90_000_000i64),
                    rng.gen_range(0.5..3.0f64),
                    rng.gen_range(0.1..30.0f64),
                    rng.gen_range(0..3i64),
                    format!("Owner {p}"),
                    format!("405-555-{:04}", p % 10_000),
                ])
                .map_err(sqlite)?;
            out.properties += 1;
            let touches = rng.gen_range(0..=options.journeys_per_property * 2);
            for t in 0..touches as i64 {
                journey_id += 1;
                journey
                    .execute(params![
                        journey_id,
                        p,
                        channels[rng.gen_range(0..channels.len())],
                        results[rng.gen_range(0..results.len())],
                        "",
                        BASE_MS + storm * 86_400_000 + 7_200_000 + t * 600_000,
                    ])
                    .map_err(sqlite)?;
                out.journeys += 1;
            }
            let p_hold = rng.gen_range(0.02..0.3f64);
            let p_treat = (p_hold + rng.gen_range(0.0..0.4f64)).min(1.0);
            score
                .execute(params![
                    p,
                    p_treat - p_hold,
                    p_treat,
                    p_hold,
                    BASE_MS + 30 * 86_400_000
                ])
                .map_err(sqlite)?;
            out.scores += 1;
        }
    }
    // Broken rows get ids above every valid one, and no dependants, so each is reported once.
    let mut next_property = options.properties as i64 + 1;
    for n in 0..options.broken_rows {
        let (table, _) = BROKEN_KINDS[n % BROKEN_KINDS.len()];
        let id = match n % BROKEN_KINDS.len() {
            0 | 1 | 4 => {
                let id = next_property;
                next_property += 1;
                let (storm, latitude, material) = match n % BROKEN_KINDS.len() {
                    0 => (1, 123.0, "metal"),
                    1 => (1, 35.5, "thatch"),
                    _ => (9_999, 35.5, "metal"),
                };
                tx.execute(
                    "INSERT INTO properties (id, storm_id, external_id, address, latitude, longitude, roof_material, prior_claims, status)
                     VALUES (?1, ?2, ?3, 'Broken Rd', ?4, -97.0, ?5, 0, 'new')",
                    params![id, storm, format!("BAD-{id}"), latitude, material],
                )
                .map_err(sqlite)?;
                id
            }
            2 => {
                journey_id += 1;
                tx.execute(
                    "INSERT INTO journeys (id, property_id, channel, result, notes, occurred_at) VALUES (?1, 1, 'pigeon', 'talked', '', ?2)",
                    params![journey_id, BASE_MS + 86_400_000],
                )
                .map_err(sqlite)?;
                journey_id
            }
            3 => {
                // A valid property of its own carries the broken score, so only the score is rejected.
                let id = next_property;
                next_property += 1;
                tx.execute(
                    "INSERT INTO properties (id, storm_id, external_id, address, latitude, longitude, prior_claims, status)
                     VALUES (?1, 1, ?2, 'Scored Rd', 35.5, -97.0, 0, 'new')",
                    params![id, format!("SCORED-{id}")],
                )
                .map_err(sqlite)?;
                out.properties += 1;
                tx.execute(
                    "INSERT INTO uplift_scores (property_id, uplift, p_treat, p_hold, model_version, scored_at) VALUES (?1, 0.5, 1.7, 0.1, 'legacy-v3', ?2)",
                    params![id, BASE_MS],
                )
                .map_err(sqlite)?;
                id
            }
            _ => {
                let id = 1_000 + n as i64;
                tx.execute(
                    "INSERT INTO storms (id, event_id, name, started_at, hail_size_in, wind_mph, affected_area, status)
                     VALUES (?1, 'NWS-X', '', ?2, 1.0, 40.0, 'Nowhere', 'active')",
                    params![id, BASE_MS],
                )
                .map_err(sqlite)?;
                id
            }
        };
        out.broken.push((table.to_owned(), id));
    }
    tx.commit().map_err(sqlite)?;
    for table in &options.drop_tables {
        if !crate::schema::REQUIRED_TABLES.contains(&table.as_str()) {
            return Err(LegacyError::Generate(format!(
                "cannot drop '{table}': not a legacy table"
            )));
        }
        conn.execute_batch(&format!("DROP TABLE {table}"))
            .map_err(sqlite)?;
    }
    Ok(out)
}
