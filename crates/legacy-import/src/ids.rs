//! Deterministic ids: a legacy integer id becomes the UUID made of the first 16 bytes of
//! SHA-256("stormops-legacy-import/v1" ‖ tenant ‖ table ‖ old id), stamped as a version-8 (custom)
//! RFC 9562 UUID. The same tenant, table and old id always give the same UUID, so a re-run of an import
//! finds every record it wrote and changes nothing; different tenants get unrelated ids.

use domain::TenantId;
use ring::digest::{SHA256, digest};
use uuid::Uuid;

const DOMAIN_SEPARATOR: &[u8] = b"stormops-legacy-import/v1";

/// The UUID of legacy row `old_id` of `table` in `tenant`.
pub fn legacy_uuid(tenant: TenantId, table: &str, old_id: i64) -> Uuid {
    let mut input = Vec::with_capacity(DOMAIN_SEPARATOR.len() + 16 + table.len() + 10);
    input.extend_from_slice(DOMAIN_SEPARATOR);
    input.push(0);
    input.extend_from_slice(tenant.0.as_bytes());
    input.extend_from_slice(table.as_bytes());
    input.push(0);
    input.extend_from_slice(&old_id.to_be_bytes());
    let hash = digest(&SHA256, &input);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    // Version 8 (custom) in the high nibble of byte 6, the RFC 9562 variant (10xx) in byte 8.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_uuid_and_valid_version() {
        let t = TenantId(Uuid::from_u128(7));
        let a = legacy_uuid(t, "properties", 42);
        assert_eq!(a, legacy_uuid(t, "properties", 42));
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, legacy_uuid(t, "properties", 43));
        assert_ne!(a, legacy_uuid(t, "storms", 42));
        assert_ne!(
            a,
            legacy_uuid(TenantId(Uuid::from_u128(8)), "properties", 42)
        );
    }
}
