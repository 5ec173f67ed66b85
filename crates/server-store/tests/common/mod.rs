//! Shared test setup: a fresh database initialised with this crate's roles and migrations, and pools
//! for the application and control roles.
// Helpers of tests: a panic here is a failing test, which is what we want.
#![allow(dead_code, clippy::unwrap_used)]

use server_store::{AppPool, ControlPool, InitOutput, PoolSettings, init_database};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_postgres::TestDatabase;

#[derive(Debug)]
pub struct Harness {
    pub db: TestDatabase,
    pub init: InitOutput,
    pub app: AppPool,
    pub control: ControlPool,
}

pub async fn setup() -> Harness {
    setup_with(PoolSettings {
        max_connections: 8,
        ..PoolSettings::default()
    })
    .await
}

pub async fn setup_with(settings: PoolSettings) -> Harness {
    let db = test_postgres::fresh_database()
        .await
        .expect("test database");
    let init = init_database(&db.server_url, &db.name, &db.role_prefix)
        .await
        .expect("init_database");
    let app = AppPool::connect(&init.app_url, &settings)
        .await
        .expect("app pool");
    let control = ControlPool::connect(&init.control_url, &settings)
        .await
        .expect("control pool");
    Harness {
        db,
        init,
        app,
        control,
    }
}

impl Harness {
    /// A raw pool as the application role, for attacks that bypass TenantTx on purpose.
    pub async fn raw_app_pool(&self, max: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max)
            .connect(&self.init.app_url)
            .await
            .expect("raw app pool")
    }

    /// A raw superuser pool on the test database (catalog inspection only).
    pub async fn superuser_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.db.superuser_url)
            .await
            .expect("superuser pool")
    }

    pub async fn teardown(self) {
        self.app.close().await;
        self.control.close().await;
        // Best effort: a failure to drop leaves a database behind, not a wrong result.
        let _ = self.db.drop_database().await;
    }
}

use domain::*;
use serde_json::json;
use server_store::{NewTenant, NewUser, PullScope, PushContext, PushOutcome, TenantTx};
use sync_protocol::{Change, ChangeOp, Entity, PullPage, PulledChange, Receipt, ReceiptStatus};

pub const NOW: Timestamp = Timestamp(1_790_000_000_000);

/// One provisioned tenant with a storm, some properties and one user of each role.
#[derive(Debug, Clone)]
pub struct Tenant1 {
    pub id: TenantId,
    pub slug: String,
    pub crew: CrewId,
    pub other_crew: CrewId,
    pub admin: UserId,
    pub chief: UserId,
    pub field: UserId,
    pub viewer: UserId,
    pub device: DeviceId,
    pub storm: StormId,
    pub properties: Vec<PropertyId>,
}

pub fn hlc(n: u64) -> Hlc {
    Hlc::new(NOW.0 as u64 - 1_000_000 + n, 0, 1)
}

pub fn storm(id: StormId) -> Storm {
    Storm {
        id,
        event_id: "NWS-1".into(),
        name: "April hail".into(),
        started_at: NOW,
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "Norman, OK".into(),
        status: StormStatus::Active,
    }
}

pub fn property(id: PropertyId, storm: StormId, n: usize) -> Property {
    Property {
        id,
        storm_id: storm,
        external_id: format!("P-{n}"),
        address: format!("{n} Elm St"),
        latitude: 35.2,
        longitude: -97.4,
        roof_age_years: Some(12.0),
        roof_material: Some(RoofMaterial::AsphaltShingle),
        square_feet: Some(2000.0),
        home_value: Some(Cents(30_000_000)),
        hail_size_in: Some(1.5),
        distance_to_core_km: Some(2.0),
        prior_claims: 0,
        owner_name: Some("Pat".into()),
        owner_phone: None,
        owner_email: None,
        status: PropertyStatus::New,
    }
}

fn new_user(email: &str, role: Role, crew: Option<CrewId>) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email: email.into(),
        name: "Someone".into(),
        role,
        crew_id: crew,
        password_hash: "hash".into(),
    }
}

/// Provisions a tenant through the control plane, then adds users, a device, a storm and properties
/// through the application role.
pub async fn provision(h: &Harness, slug: &str, property_count: usize) -> Tenant1 {
    let crew = Crew {
        id: CrewId::generate(),
        name: "Crew A".into(),
        chief_id: None,
    };
    let admin = new_user(&format!("admin@{slug}.example"), Role::Admin, None);
    let new = NewTenant {
        id: TenantId::generate(),
        name: format!("Tenant {slug}"),
        slug: slug.into(),
        plan: PlanTier::Standard,
        created_at: NOW,
        default_crew: crew.clone(),
        admin: admin.clone(),
    };
    let mut ctl = h.control.begin().await.unwrap();
    let tenant = ctl.create_tenant(&new).await.unwrap();
    ctl.commit().await.unwrap();

    let mut tx = h.app.begin_tenant(tenant.id).await.unwrap();
    let other_crew = Crew {
        id: CrewId::generate(),
        name: "Crew B".into(),
        chief_id: None,
    };
    tx.add_crew(&other_crew, NOW).await.unwrap();
    let chief = new_user(
        &format!("chief@{slug}.example"),
        Role::CrewChief,
        Some(crew.id),
    );
    let field = new_user(
        &format!("field@{slug}.example"),
        Role::FieldUser,
        Some(crew.id),
    );
    let viewer = new_user(&format!("viewer@{slug}.example"), Role::Viewer, None);
    for u in [&chief, &field, &viewer] {
        tx.add_user(u, NOW).await.unwrap();
    }
    let device = tx
        .register_or_get_device(DeviceId::generate(), field.id, "Truck 1", NOW)
        .await
        .unwrap();
    let storm_id = StormId::generate();
    tx.upsert_storms(&[storm(storm_id)], hlc(0), NOW)
        .await
        .unwrap();
    let properties: Vec<PropertyId> = (0..property_count)
        .map(|_| PropertyId::generate())
        .collect();
    let records: Vec<Property> = properties
        .iter()
        .enumerate()
        .map(|(n, id)| property(*id, storm_id, n))
        .collect();
    tx.upsert_properties(&records, hlc(0), NOW).await.unwrap();
    tx.commit().await.unwrap();
    Tenant1 {
        id: tenant.id,
        slug: slug.into(),
        crew: crew.id,
        other_crew: other_crew.id,
        admin: admin.id,
        chief: chief.id,
        field: field.id,
        viewer: viewer.id,
        device: device.id,
        storm: storm_id,
        properties,
    }
}

impl Tenant1 {
    pub fn ctx(&self, role: Role) -> PushContext {
        let (user_id, crew_id) = match role {
            Role::Admin => (self.admin, None),
            Role::CrewChief => (self.chief, Some(self.crew)),
            Role::FieldUser => (self.field, Some(self.crew)),
            Role::Viewer => (self.viewer, None),
        };
        PushContext {
            user_id,
            device_id: self.device,
            role,
            crew_id,
            now_ms: NOW.0,
        }
    }

    pub fn scope(&self, role: Role) -> PullScope {
        let ctx = self.ctx(role);
        PullScope {
            role,
            user_id: ctx.user_id,
            crew_id: ctx.crew_id,
            protocol: sync_protocol::PROTOCOL_VERSION,
        }
    }

    pub fn touch(&self, property: usize, notes: &str) -> JourneyTouch {
        JourneyTouch {
            id: TouchId::generate(),
            property_id: self.properties[property],
            storm_id: self.storm,
            user_id: self.field,
            device_id: self.device,
            channel: Channel::DoorKnock,
            result: TouchResult::Talked,
            notes: notes.into(),
            occurred_at: NOW,
        }
    }

    pub fn outcome(&self, property: usize) -> Outcome {
        Outcome {
            id: OutcomeId::generate(),
            property_id: self.properties[property],
            storm_id: self.storm,
            converted: true,
            contract_value: Cents(1_200_000),
            occurred_at: NOW,
        }
    }

    pub fn decision(&self, property: usize, is_override: bool) -> PolicyDecision {
        PolicyDecision {
            id: DecisionId::generate(),
            property_id: self.properties[property],
            storm_id: self.storm,
            decision: Decision::Treat,
            mode: PolicyMode::Moderate,
            uplift_score: Some(0.2),
            model_version: Some("m-1".into()),
            reason: is_override.then(|| "owner asked".to_owned()),
            is_override,
            decided_by: self.field,
            decided_at: NOW,
        }
    }

    pub fn change<T: serde::Serialize>(
        &self,
        entity: Entity,
        entity_id: uuid::Uuid,
        op: ChangeOp,
        record: &T,
        n: u64,
    ) -> Change {
        Change {
            id: ChangeId::generate(),
            hlc: hlc(n),
            device_id: self.device,
            entity,
            entity_id,
            op,
            payload: serde_json::to_value(record).unwrap(),
        }
    }

    pub fn touch_change(&self, t: &JourneyTouch) -> Change {
        self.change(Entity::JourneyTouch, t.id.0, ChangeOp::Insert, t, 1)
    }

    pub fn status_change(&self, property: usize, status: PropertyStatus, n: u64) -> Change {
        self.change(
            Entity::Property,
            self.properties[property].0,
            ChangeOp::Update,
            &json!({ "status": status }),
            n,
        )
    }
}

/// Pushes in its own transaction and commits when applied.
pub async fn push(h: &Harness, t: &Tenant1, role: Role, changes: &[Change]) -> PushOutcome {
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let outcome = tx.apply_push(&t.ctx(role), changes).await.unwrap();
    if matches!(outcome, PushOutcome::Applied(_)) {
        tx.commit().await.unwrap();
    }
    outcome
}

pub fn statuses(outcome: &PushOutcome) -> Vec<ReceiptStatus> {
    match outcome {
        PushOutcome::Applied(r) | PushOutcome::Refused(r) => r.iter().map(|r| r.status).collect(),
    }
}

pub fn refused(outcome: &PushOutcome) -> &[Receipt] {
    match outcome {
        PushOutcome::Refused(r) => r,
        PushOutcome::Applied(r) => panic!("expected a refusal, got {r:?}"),
    }
}

pub async fn count(tx: &mut TenantTx, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(tx.connection())
        .await
        .unwrap()
}

/// How long `pull_until` keeps pulling before it fails: far longer than another test holds a
/// transaction open, so only a row that never comes reaches it.
pub const PULL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Pulls every page from `cursor` until the feed is drained and `done` holds for all rows pulled so
/// far; returns them, the cursor after them and the last page. The feed releases only rows below the
/// oldest transaction open anywhere in the cluster, so another test's open transaction can hold a
/// wanted row back for a moment while the tenant's other rows arrive: `done` names the rows a test
/// needs (by entity and id), never a row count. A puller just pulls again; bounded by
/// `PULL_DEADLINE`, without asserting on time. `awaited` says what `done` waits for, for the failure
/// message.
pub async fn pull_until(
    h: &Harness,
    t: &Tenant1,
    scope: &PullScope,
    cursor: Option<String>,
    awaited: &str,
    done: impl Fn(&[PulledChange]) -> bool,
) -> (Vec<PulledChange>, String, PullPage) {
    let (all, cursor, last, _) = pull_pages_until(h, t, scope, cursor, 500, awaited, done).await;
    (all, cursor, last)
}

/// [`pull_until`] with pages of at most `limit` rows; also returns every page's `next_cursor`, in order.
pub async fn pull_pages_until(
    h: &Harness,
    t: &Tenant1,
    scope: &PullScope,
    cursor: Option<String>,
    limit: u32,
    awaited: &str,
    done: impl Fn(&[PulledChange]) -> bool,
) -> (Vec<PulledChange>, String, PullPage, Vec<String>) {
    let deadline = tokio::time::Instant::now() + PULL_DEADLINE;
    let mut cursor = cursor;
    let mut all = Vec::new();
    let mut cursors = Vec::new();
    loop {
        let mut tx = h.app.begin_tenant(t.id).await.unwrap();
        let page = tx.pull(scope, cursor.as_deref(), limit).await.unwrap();
        tx.commit().await.unwrap();
        all.extend(page.changes.iter().cloned());
        cursor = Some(page.next_cursor.clone());
        cursors.push(page.next_cursor.clone());
        if !page.has_more && done(&all) {
            let c = page.next_cursor.clone();
            return (all, c, page, cursors);
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "the feed never delivered {awaited} within {PULL_DEADLINE:?} ({:?} pulling as {:?}); \
                 got {} rows: {}",
                t.slug,
                scope.role,
                all.len(),
                describe(&all)
            );
        }
        if !page.has_more {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// Pulled rows as `entity op id`, for failure messages (the first 40, then how many more).
pub fn describe(rows: &[PulledChange]) -> String {
    const SHOWN: usize = 40;
    let mut out: Vec<String> = rows
        .iter()
        .take(SHOWN)
        .map(|c| format!("{} {} {}", c.entity.as_str(), c.op.as_str(), c.entity_id))
        .collect();
    if rows.len() > SHOWN {
        out.push(format!("... and {} more", rows.len() - SHOWN));
    }
    format!("[{}]", out.join(", "))
}

/// Whether `rows` hold a row of `entity` with id `id` (any op).
pub fn has(rows: &[PulledChange], entity: Entity, id: uuid::Uuid) -> bool {
    rows.iter().any(|c| c.entity == entity && c.entity_id == id)
}

impl Tenant1 {
    /// Whether `rows` hold what `provision` wrote to the feed that every role pulls (tenant-wide
    /// reference data): the storm and each property.
    pub fn provisioned(&self, rows: &[PulledChange]) -> bool {
        has(rows, Entity::Storm, self.storm.0)
            && self
                .properties
                .iter()
                .all(|p| has(rows, Entity::Property, p.0))
    }
}
