//! Signing a laptop in to a sync server: find (or create) this tenant's encrypted file, register this
//! laptop's device id with the server, and keep the refresh token inside the encrypted file so the
//! laptop can sync unattended and offline work made after the access token lapsed is pushed later.

use domain::{DeviceId, Timestamp};
use local_store::{
    DataDir, NewTenant, Passphrase, RecoveryKey, ServerAccount, ServerLink, TenantStore,
};
use sync_client::{ClientError, SyncClient};
use sync_protocol::{LoginRequest, TokenPair};
use zeroize::Zeroizing;

/// What signing in needs.
#[derive(Debug)]
pub struct SignInRequest<'a> {
    pub server_url: &'a str,
    pub tenant_slug: &'a str,
    pub email: &'a str,
    /// The account password (sent to the server only).
    pub password: Zeroizing<String>,
    /// The local user who unlocks (or creates) the tenant file, and their passphrase.
    pub local_user: &'a str,
    pub passphrase: &'a Passphrase,
    pub device_name: &'a str,
}

/// A signed-in, open tenant file.
#[derive(Debug)]
pub struct SignedIn {
    pub store: TenantStore,
    pub tokens: TokenPair,
    /// Set when this sign-in created the file: show it once.
    pub recovery_key: Option<RecoveryKey>,
    pub created: bool,
}

/// Why signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Server(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] local_store::StoreError),
    #[error(
        "the server answered for tenant {got}, but this laptop's file for '{slug}' belongs to tenant {expected}"
    )]
    TenantMismatch {
        slug: String,
        expected: String,
        got: String,
    },
}

impl SignInError {
    /// A stable code for the CLI and the app.
    pub fn code(&self) -> String {
        match self {
            SignInError::Server(e) => e
                .code()
                .map_or_else(|| "sync.offline".to_owned(), |c| format!("server.{c}")),
            SignInError::Store(e) => e.code(),
            SignInError::TenantMismatch { .. } => "sync.tenant_mismatch".to_owned(),
        }
    }
}

fn normalise(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

/// Signs in. Blocking store work runs on the caller's thread: call from a blocking context or wrap it.
pub async fn sign_in(
    data_dir: &DataDir,
    request: SignInRequest<'_>,
) -> Result<SignedIn, SignInError> {
    let server_url = normalise(request.server_url);
    let client = SyncClient::new(&server_url)?;
    let existing = data_dir.list_tenants()?.into_iter().find(|t| {
        t.slug == request.tenant_slug
            && t.server_url.as_deref().map(normalise).as_deref() == Some(server_url.as_str())
    });
    let opened = match &existing {
        Some(entry) => Some(data_dir.open(
            entry.tenant_id,
            Some(request.local_user),
            request.passphrase,
        )?),
        None => None,
    };
    // A known file keeps its device id: the server sees the same laptop sign in again.
    let device_id = opened
        .as_ref()
        .map_or_else(DeviceId::generate, TenantStore::device_id);
    let login = LoginRequest {
        tenant_slug: request.tenant_slug.to_owned(),
        email: request.email.to_owned(),
        password: request.password.to_string(),
        device_id,
        device_name: request.device_name.to_owned(),
    };
    let mut tokens = client.login(&login).await?;
    drop(login);
    let me = match client.me(&tokens.access_token).await {
        // A clock far behind the server's, or a very short token lifetime: refresh once and carry on.
        Err(e) if e.code() == Some(sync_protocol::ErrorCode::TokenExpired) => {
            tokens = client.refresh(&tokens.refresh_token).await?;
            client.me(&tokens.access_token).await?
        }
        other => other?,
    };
    let crew_id = me.user.as_ref().and_then(|u| u.crew_id);
    let (mut store, recovery_key, created) = match opened {
        Some(store) => {
            if store.tenant_id() != tokens.tenant_id {
                return Err(SignInError::TenantMismatch {
                    slug: request.tenant_slug.to_owned(),
                    expected: store.tenant_id().to_string(),
                    got: tokens.tenant_id.to_string(),
                });
            }
            (store, None, false)
        }
        None => {
            let name = me
                .tenant
                .map_or_else(|| request.tenant_slug.to_owned(), |t| t.name);
            let link = ServerLink {
                server_url: server_url.clone(),
                tenant_slug: request.tenant_slug.to_owned(),
                device_id,
            };
            let new = NewTenant {
                tenant_id: Some(tokens.tenant_id),
                name: &name,
                user: request.local_user,
                passphrase: request.passphrase,
            };
            let created = data_dir.create_tenant_for_server(new, &link, Timestamp::now())?;
            (created.store, Some(created.recovery_key), true)
        }
    };
    store.set_refresh_token(Some(&tokens.refresh_token))?;
    store.set_local_user_id(request.local_user, tokens.user_id)?;
    store.set_server_account(&ServerAccount {
        server_url,
        tenant_slug: request.tenant_slug.to_owned(),
        email: request.email.to_owned(),
        user_id: tokens.user_id,
        role: tokens.role,
        crew_id,
        signed_in_at: Timestamp::now(),
    })?;
    Ok(SignedIn {
        store,
        tokens,
        recovery_key,
        created,
    })
}
