//! The laptops' sync health as the server saw it (`GET /v1/admin/devices`): the last accepted push and
//! its size, the last pull, refused batches, revoked or not. An admin gets every device of its tenant, a
//! crew chief its crews' devices; the server refuses anyone else with `forbidden`.

use crate::{ClientError, SyncClient};

pub use sync_protocol::{DeviceHealthReport, DeviceSyncHealth};

impl SyncClient {
    /// Each laptop's sync health: `GET /v1/admin/devices`.
    pub async fn admin_devices(
        &self,
        access_token: &str,
    ) -> Result<DeviceHealthReport, ClientError> {
        let body = self.get_json("/v1/admin/devices", access_token).await?;
        serde_json::from_value(body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DeviceStatus, Timestamp};

    #[test]
    fn reads_the_servers_shape() {
        let body = serde_json::json!({
            "at": 1_700_000_100_000_i64,
            "devices": [{
                "device_id": "0190a6f0-0000-7000-8000-000000000001", "device_name": "Sam's laptop",
                "user_id": "0190a6f0-0000-7000-8000-000000000002", "user_name": "Sam", "user_email": "sam@x.example",
                "crew_id": null, "status": "revoked", "registered_at": 1_700_000_000_000_i64,
                "revoked_at": 1_700_000_050_000_i64, "last_push_at": 1_700_000_010_000_i64, "last_push_changes": 12,
                "last_pull_at": null, "last_refused_at": null, "last_refused_changes": null, "refused_changes_total": 3
            }]
        });
        let report: DeviceHealthReport = serde_json::from_value(body).expect("decodes");
        let d = &report.devices[0];
        assert_eq!(d.status, DeviceStatus::Revoked);
        assert_eq!(d.last_push_at, Some(Timestamp(1_700_000_010_000)));
        assert_eq!(d.last_push_changes, Some(12));
        assert_eq!(d.last_pull_at, None);
        assert_eq!(d.refused_changes_total, 3);
        assert_eq!(report.at, 1_700_000_100_000);
    }
}
