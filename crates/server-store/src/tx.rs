//! The transactions every query runs in. [`TenantTx`] is the only way to reach tenant data: it opens a
//! transaction on the application pool and sets `app.tenant_id` transaction-locally in the same round
//! trip as `BEGIN`, so the context can neither be missing nor outlive the transaction. [`ControlTx`] is
//! the control plane's transaction. Both commit explicitly; dropping one rolls it back.

use domain::TenantId;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::error::StoreError;
use crate::pool::{AppPool, ControlPool};

/// One request's or one sync batch's transaction, scoped to one tenant by row-level security.
#[derive(Debug)]
pub struct TenantTx {
    pub(crate) tx: Transaction<'static, Postgres>,
    pub(crate) tenant_id: TenantId,
}

/// The statement that opens a tenant transaction. The id is a typed UUID whose text form is hex and
/// hyphens only, so splicing it is safe; one simple-query round trip carries both statements.
pub(crate) fn begin_statement(tenant_id: TenantId) -> String {
    format!(
        "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
        tenant_id.0.hyphenated()
    )
}

impl AppPool {
    /// Opens a transaction for `tenant_id`: `BEGIN` then `set_config('app.tenant_id', .., true)`.
    pub async fn begin_tenant(&self, tenant_id: TenantId) -> Result<TenantTx, StoreError> {
        let tx = self.0.begin_with(begin_statement(tenant_id)).await?;
        Ok(TenantTx { tx, tenant_id })
    }
}

impl TenantTx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// The connection, for queries this crate does not wrap. It stays inside this tenant's context.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// A control-plane transaction. It starts with no tenant context: it reads `tenants` across tenants
/// (its own policy) and reaches one tenant's data only through [`ControlTx::enter_tenant`].
#[derive(Debug)]
pub struct ControlTx {
    pub(crate) tx: Transaction<'static, Postgres>,
}

impl ControlPool {
    pub async fn begin(&self) -> Result<ControlTx, StoreError> {
        Ok(ControlTx {
            tx: self.0.begin().await?,
        })
    }
}

impl ControlTx {
    /// Sets this transaction's tenant context (cross-tenant jobs work one tenant at a time, under the
    /// same policies as the service).
    pub async fn enter_tenant(&mut self, tenant_id: TenantId) -> Result<(), StoreError> {
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant_id.0.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Clears the tenant context again.
    pub async fn leave_tenant(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT set_config('app.tenant_id', '', true)")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_statement_splices_only_the_uuid() {
        let id = TenantId(uuid::Uuid::from_u128(
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ));
        assert_eq!(
            begin_statement(id),
            "BEGIN; SELECT set_config('app.tenant_id', '01234567-89ab-cdef-0123-456789abcdef', true)"
        );
    }
}
