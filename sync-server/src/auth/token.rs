//! Access tokens are short-lived, HMAC-SHA256-signed (ring) claims: `v1.<claims>.<signature>`, base64url.
//! Refresh tokens are 256 random bits, given to the client once and stored only as their SHA-256 hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::{CrewId, DeviceId, Role, TenantId, UserId};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// How long an access token lives.
pub const ACCESS_TTL_MS: i64 = 15 * 60 * 1000;
/// How long a refresh token lives when unused.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;
const PREFIX: &str = "v1.";

/// Who a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub role: Role,
    pub crew_id: Option<CrewId>,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed or its signature does not match")]
    Invalid,
    #[error("the access token has expired; refresh it or sign in again")]
    Expired,
    #[error("the system random source failed")]
    Random,
}

/// The server's signing key. Never printed.
pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// A key from 32 or more secret bytes.
    pub fn from_bytes(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A fresh random key (32 bytes), returned with its bytes so it can be stored.
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), TokenError> {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenError::Random)?;
        Ok((Self::from_bytes(&bytes), bytes))
    }

    /// Signs claims into an access token.
    pub fn issue(&self, claims: &Claims) -> String {
        // Serialising a plain struct of ids and integers cannot fail.
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{PREFIX}{payload}");
        let tag = hmac::sign(&self.0, signed.as_bytes());
        format!("{signed}.{}", B64.encode(tag.as_ref()))
    }

    /// Verifies an access token's signature and expiry.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
        let (payload, signature) = rest.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let signature = B64.decode(signature).map_err(|_| TokenError::Invalid)?;
        let signed_len = PREFIX.len() + payload.len();
        hmac::verify(&self.0, &token.as_bytes()[..signed_len], &signature)
            .map_err(|_| TokenError::Invalid)?;
        let claims: Claims =
            serde_json::from_slice(&B64.decode(payload).map_err(|_| TokenError::Invalid)?)
                .map_err(|_| TokenError::Invalid)?;
        if claims.expires_at_ms <= now_ms {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new refresh token for `tenant`: the text for the client and the hash to store. The tenant id is
/// part of the text so the server knows which tenant's (row-level secured) table to look it up in.
pub fn new_refresh_token(tenant: TenantId) -> Result<(String, Vec<u8>), TokenError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| TokenError::Random)?;
    let text = format!("rt1.{}.{}", tenant.0.simple(), B64.encode(bytes.as_ref()));
    let hash = refresh_token_hash(&text);
    Ok((text, hash))
}

/// The tenant a refresh token belongs to, if the text has the right shape.
pub fn refresh_token_tenant(token: &str) -> Option<TenantId> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("rt1"), Some(tenant), Some(secret), None) if secret.len() == 43 => {
            uuid::Uuid::try_parse(tenant).ok().map(TenantId)
        }
        _ => None,
    }
}

/// The stored form of a refresh token: its SHA-256.
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at_ms: i64) -> Claims {
        Claims {
            tenant_id: TenantId::generate(),
            user_id: UserId::generate(),
            device_id: DeviceId::generate(),
            role: Role::FieldUser,
            crew_id: None,
            issued_at_ms: 1_000,
            expires_at_ms,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let key = TokenKey::from_bytes(&[7u8; 32]);
        let c = claims(10_000);
        let token = key.issue(&c);
        assert_eq!(key.verify(&token, 9_999), Ok(c));
        assert_eq!(key.verify(&token, 10_000), Err(TokenError::Expired));
    }

    #[test]
    fn forged_and_foreign_tokens_are_invalid() {
        let key = TokenKey::from_bytes(&[7u8; 32]);
        let other = TokenKey::from_bytes(&[8u8; 32]);
        let mut c = claims(10_000);
        let token = key.issue(&c);
        assert_eq!(other.verify(&token, 0), Err(TokenError::Invalid));
        // Changing the role inside the token breaks the signature.
        c.role = Role::Admin;
        let forged_payload = B64.encode(serde_json::to_vec(&c).unwrap());
        let signature = token.rsplit_once('.').unwrap().1;
        assert_eq!(
            key.verify(&format!("v1.{forged_payload}.{signature}"), 0),
            Err(TokenError::Invalid)
        );
        for junk in ["", "v1.", "v1..", "v2.abc.def", "Bearer x", "v1.@@@.###"] {
            assert_eq!(key.verify(junk, 0), Err(TokenError::Invalid), "{junk}");
        }
    }

    #[test]
    fn refresh_tokens_are_random_name_their_tenant_and_are_stored_hashed() {
        let tenant = TenantId::generate();
        let (a, hash_a) = new_refresh_token(tenant).unwrap();
        let (b, _) = new_refresh_token(tenant).unwrap();
        assert_ne!(a, b);
        assert_eq!(refresh_token_hash(&a), hash_a);
        assert_eq!(hash_a.len(), 32);
        assert_eq!(refresh_token_tenant(&a), Some(tenant));
        assert_eq!(refresh_token_tenant("rt1.nope.x"), None);
        assert_eq!(refresh_token_tenant(&a.replace("rt1.", "rt2.")), None);
    }
}
