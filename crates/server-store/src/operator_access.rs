//! Operator access to one tenant through the control-plane role: the same `TenantTx` (and so the same
//! row-level security) as the service, opened on the control pool, for provisioning and support tasks.

use domain::{CrewId, TenantId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::pool::ControlPool;
use crate::tx::{TenantTx, begin_statement};

impl ControlPool {
    /// A transaction scoped to `tenant_id` on the control-plane role.
    pub async fn begin_tenant(&self, tenant_id: TenantId) -> Result<TenantTx, StoreError> {
        let tx = self.0.begin_with(begin_statement(tenant_id)).await?;
        Ok(TenantTx { tx, tenant_id })
    }
}

impl TenantTx {
    /// The tenant's first crew (made at provisioning), if any.
    pub async fn default_crew_id(&mut self) -> Result<Option<CrewId>, StoreError> {
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM crews ORDER BY id LIMIT 1")
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(id.map(CrewId))
    }
}
