//! How `journey_touches` stores a touch's channel, result and device (migration 0013): small integers
//! instead of words, and NULL for this file's own device, since a crew logs touches all day and every
//! page written is encrypted.

use domain::{Channel, DeviceId, TouchResult};
use rusqlite::Row;
use rusqlite::types::Type;

/// The `channel` column's value (the numbers migration 0013 gave the words; never renumbered).
pub(crate) const fn channel_code(channel: Channel) -> i64 {
    match channel {
        Channel::DoorKnock => 1,
        Channel::Call => 2,
        Channel::Text => 3,
        Channel::Mailer => 4,
        Channel::Inspection => 5,
        Channel::Estimate => 6,
        Channel::ContractSigned => 7,
    }
}

/// The channel a stored `channel` value names.
pub(crate) fn channel_from_code(code: i64) -> Option<Channel> {
    Channel::ALL
        .iter()
        .copied()
        .find(|&channel| channel_code(channel) == code)
}

/// The `result` column's value (the numbers migration 0013 gave the words; never renumbered).
pub(crate) const fn result_code(result: TouchResult) -> i64 {
    match result {
        TouchResult::NoAnswer => 1,
        TouchResult::Left => 2,
        TouchResult::Talked => 3,
        TouchResult::Interested => 4,
        TouchResult::NotInterested => 5,
        TouchResult::Scheduled => 6,
        TouchResult::Completed => 7,
        TouchResult::Signed => 8,
        TouchResult::Declined => 9,
    }
}

/// The result a stored `result` value names.
pub(crate) fn result_from_code(code: i64) -> Option<TouchResult> {
    TouchResult::ALL
        .iter()
        .copied()
        .find(|&result| result_code(result) == code)
}

/// The channel stored in column `index` of `row`; a number no channel has is a conversion error.
pub(crate) fn channel_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Channel> {
    let code = row.get(index)?;
    channel_from_code(code).ok_or_else(|| unknown(index, "channel", code))
}

/// The result stored in column `index` of `row`; a number no result has is a conversion error.
pub(crate) fn result_at(row: &Row<'_>, index: usize) -> rusqlite::Result<TouchResult> {
    let code = row.get(index)?;
    result_from_code(code).ok_or_else(|| unknown(index, "result", code))
}

fn unknown(index: usize, what: &str, code: i64) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        Type::Integer,
        format!("no touch {what} has the number {code}").into(),
    )
}

/// The `device_id` column's value: NULL for the file's own device, else the device's 16 bytes.
pub(crate) fn device_bytes(device: &DeviceId, own: &DeviceId) -> Option<[u8; 16]> {
    (device != own).then(|| *device.0.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers are migration 0013's, in its order, one per word, and read back.
    #[test]
    fn every_channel_and_result_has_its_own_code_in_the_migrations_order() {
        let channels: Vec<i64> = Channel::ALL.iter().map(|&c| channel_code(c)).collect();
        assert_eq!(channels, (1..=7).collect::<Vec<_>>());
        let results: Vec<i64> = TouchResult::ALL.iter().map(|&r| result_code(r)).collect();
        assert_eq!(results, (1..=9).collect::<Vec<_>>());
        for &channel in Channel::ALL {
            assert_eq!(channel_from_code(channel_code(channel)), Some(channel));
        }
        for &result in TouchResult::ALL {
            assert_eq!(result_from_code(result_code(result)), Some(result));
        }
        assert_eq!(channel_from_code(0), None);
        assert_eq!(result_from_code(10), None);
    }

    #[test]
    fn only_another_devices_id_is_stored() {
        let (own, other) = (DeviceId::generate(), DeviceId::generate());
        assert_eq!(device_bytes(&own, &own), None);
        assert_eq!(device_bytes(&other, &own), Some(*other.0.as_bytes()));
    }
}
