//! The server account of a tenant file: which server it syncs with, the tenant's slug there, and the
//! user who signed in (their id, role and crew decide what the app shows and what the server sends).

use domain::{CrewId, Role, Timestamp, UserId};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{StoreError, StoreResult};
use crate::store::TenantStore;

/// Who signed in on this file, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerAccount {
    pub server_url: String,
    pub tenant_slug: String,
    pub email: String,
    pub user_id: UserId,
    pub role: Role,
    pub crew_id: Option<CrewId>,
    pub signed_in_at: Timestamp,
}

fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| StoreError::Decode(format!("server_account.{what} holds '{text}'")))
}

impl TenantStore {
    /// Records the account after a sign-in (replacing any earlier one).
    pub fn set_server_account(&mut self, account: &ServerAccount) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO server_account (singleton, server_url, tenant_slug, email, user_id, role, crew_id, signed_in_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (singleton) DO UPDATE SET server_url = excluded.server_url, tenant_slug = excluded.tenant_slug,
               email = excluded.email, user_id = excluded.user_id, role = excluded.role, crew_id = excluded.crew_id,
               signed_in_at = excluded.signed_in_at",
            params![
                account.server_url,
                account.tenant_slug,
                account.email,
                account.user_id.to_string(),
                account.role.as_str(),
                account.crew_id.map(|c| c.to_string()),
                account.signed_in_at.millis()
            ],
        )?;
        Ok(())
    }

    /// The account, if this file has signed in to a server.
    pub fn server_account(&self) -> StoreResult<Option<ServerAccount>> {
        type Row = (String, String, String, String, String, Option<String>, i64);
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT server_url, tenant_slug, email, user_id, role, crew_id, signed_in_at FROM server_account WHERE singleton = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()?;
        let Some((server_url, tenant_slug, email, user_id, role, crew_id, signed_in_at)) = row
        else {
            return Ok(None);
        };
        Ok(Some(ServerAccount {
            server_url,
            tenant_slug,
            email,
            user_id: parse(&user_id, "user_id")?,
            role: parse(&role, "role")?,
            crew_id: crew_id.map(|c| parse(&c, "crew_id")).transpose()?,
            signed_in_at: Timestamp::from_millis(signed_in_at),
        }))
    }
}
